"""The S3 walk-through of docs/backtest.md: a corpus in moto's in-process S3, then the command.

    python -m bench.s3_walkthrough replay s3://org-trail/ --start 2025-03-03T00:00:00Z \\
        --end 2025-03-04T00:00:00Z --output jsonl

Uploads bench/corpus/r100000-s7-v1 (`python -m bench.corpus bench/corpus --records 100000`)
into a bucket `org-trail` under `AWSLogs/o-exampleorg1/` (an organisation trail's layout), runs
`ssm-detect` with the arguments given, and says how long the command took. No AWS is reached.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import boto3
from moto import mock_aws

from ssm_detect.cli import main

CORPUS = Path(__file__).resolve().parent / "corpus" / "r100000-s7-v1"


def run(argv: list[str]) -> int:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "walkthrough")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "walkthrough")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="org-trail")
        objects = sorted(CORPUS.rglob("*.json.gz"))
        for path in objects:
            below = str(path.relative_to(CORPUS)).split("AWSLogs/", 1)[1]
            s3.put_object(
                Bucket="org-trail", Key=f"AWSLogs/o-exampleorg1/{below}", Body=path.read_bytes()
            )
        sys.stderr.write(f"uploaded {len(objects)} objects to s3://org-trail/\n")
        started = time.perf_counter()
        code = main(argv)
        sys.stderr.write(f"exit {code} in {time.perf_counter() - started:.1f} s\n")
        return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
