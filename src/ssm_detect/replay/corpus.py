"""Synthetic CloudTrail for backtests and benchmarks: S3 log objects with a realistic mix.

A real trail is mostly other services (EC2 describes, S3, STS, KMS); about 1% of its records
are SSM, and most of those are agents and consoles polling (`UpdateInstanceInformation`,
`GetParameters`, `DescribeInstanceInformation`), with a few percent `SendCommand` and
`CreateDocument`. The corpus follows that mix, spread over many principals, written as
CloudTrail writes S3 objects (`{"Records": [...]}`, gzip, one object per slice of time).
The same seed gives the same bytes, so measurements can be repeated.

    python -m ssm_detect.replay.corpus OUT_FOLDER --records 1000000
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
REGION = "us-east-1"
_SSM = "ssm.amazonaws.com"
START = datetime(2025, 3, 1, tzinfo=UTC)
# (eventSource, eventName) of the non-SSM majority, and of SSM's own background noise.
_OTHER_CALLS = (
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("s3.amazonaws.com", "GetBucketAcl"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("kms.amazonaws.com", "Decrypt"),
    ("logs.amazonaws.com", "CreateLogStream"),
    ("iam.amazonaws.com", "GetRole"),
)
_SSM_BACKGROUND = (
    "UpdateInstanceInformation",
    "GetParameters",
    "DescribeInstanceInformation",
    "ListCommandInvocations",
)
_USER_AGENT = "aws-cli/2.22.10 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-1021-aws lang/python#3.12.6"


@dataclass(frozen=True)
class CorpusMix:
    ssm_share: float = 0.01
    """Fraction of records that are SSM calls."""
    action_share: float = 0.04
    """Fraction of SSM calls that are SendCommand or CreateDocument."""
    principals: int = 300
    span: timedelta = timedelta(days=7)


@dataclass
class CorpusStats:
    records: int = 0
    ssm: int = 0
    send_command: int = 0
    create_document: int = 0
    objects: int = 0


def write_corpus(
    folder: Path,
    records: int,
    *,
    per_object: int = 1000,
    mix: CorpusMix | None = None,
    seed: int = 0,
) -> CorpusStats:
    """Write `records` records as gzip S3 objects under `folder`, in CloudTrail's key layout."""
    stats = CorpusStats()
    batch: list[dict[str, Any]] = []
    # Test data: repeatable, not secret.
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    for record in synthetic_records(records, mix or CorpusMix(), rng, stats):
        batch.append(record)
        if len(batch) == per_object:
            _write_object(folder, batch, stats)
            batch = []
    if batch:
        _write_object(folder, batch, stats)
    return stats


def synthetic_records(
    count: int, mix: CorpusMix, rng: random.Random, stats: CorpusStats
) -> Iterator[dict[str, Any]]:
    """`count` records in event-time order, evenly spread over `mix.span`."""
    step = mix.span / max(count, 1)
    for index in range(count):
        moment = START + step * index
        role = f"Role{rng.randrange(mix.principals):03d}"
        stats.records += 1
        if rng.random() >= mix.ssm_share:
            source, name = rng.choice(_OTHER_CALLS)
            yield _record(rng, moment, role, _Call(source, name, {"maxResults": 100}))
            continue
        stats.ssm += 1
        if rng.random() >= mix.action_share:
            name = rng.choice(_SSM_BACKGROUND)
            yield _record(rng, moment, role, _Call(_SSM, name, {}))
        elif rng.random() < 0.8:
            stats.send_command += 1
            yield _send_command(rng, moment, role)
        else:
            stats.create_document += 1
            yield _create_document(rng, moment, role)


def _send_command(rng: random.Random, moment: datetime, role: str) -> dict[str, Any]:
    instances = [f"i-{rng.getrandbits(64):017x}"[:19] for _ in range(rng.choice((1, 1, 2, 3, 5)))]
    request = {
        "instanceIds": instances,
        "documentName": "AWS-RunShellScript",
        "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }
    response = {
        "command": {
            "commandId": str(_uuid(rng)),
            "documentName": "AWS-RunShellScript",
            "instanceIds": instances,
            "targets": [],
            "status": "Pending",
        }
    }
    return _record(rng, moment, role, _Call(_SSM, "SendCommand", request, response))


def _create_document(rng: random.Random, moment: datetime, role: str) -> dict[str, Any]:
    name = f"Ops-{rng.getrandbits(32):08x}"
    request = {
        "content": "HIDDEN_DUE_TO_SECURITY_REASONS",
        "name": name,
        "documentType": "Command",
        "documentFormat": "JSON",
    }
    response = {"documentDescription": {"name": name, "documentType": "Command"}}
    return _record(rng, moment, role, _Call(_SSM, "CreateDocument", request, response))


@dataclass(frozen=True)
class _Call:
    source: str
    name: str
    request: dict[str, Any]
    response: dict[str, Any] | None = None


def _record(rng: random.Random, moment: datetime, role: str, call: _Call) -> dict[str, Any]:
    session = f"session-{rng.randrange(1000)}"
    return {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE{role.upper()}:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            "accountId": ACCOUNT,
            "accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": f"AROAEXAMPLE{role.upper()}",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                    "accountId": ACCOUNT,
                    "userName": role,
                },
                "attributes": {
                    "creationDate": _iso(moment - timedelta(minutes=20)),
                    "mfaAuthenticated": "false",
                },
            },
        },
        "eventTime": _iso(moment),
        "eventSource": call.source,
        "eventName": call.name,
        "awsRegion": REGION,
        "sourceIPAddress": f"198.51.100.{rng.randrange(1, 255)}",
        "userAgent": _USER_AGENT,
        "requestParameters": call.request,
        "responseElements": call.response,
        "requestID": str(_uuid(rng)),
        "eventID": str(_uuid(rng)),
        "readOnly": call.response is None,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{call.source.split('.', 1)[0]}.{REGION}.amazonaws.com",
        },
    }


def _write_object(folder: Path, records: Sequence[dict[str, Any]], stats: CorpusStats) -> None:
    first = datetime.fromisoformat(records[0]["eventTime"])
    day = folder / f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{first:%Y/%m/%d}"
    day.mkdir(parents=True, exist_ok=True)
    name = f"{ACCOUNT}_CloudTrail_{REGION}_{first:%Y%m%dT%H%M%S}Z_{stats.objects:06d}.json.gz"
    body = json.dumps({"Records": list(records)}, separators=(",", ":")).encode()
    # Level 1: generation speed matters more here than size; reading cost is the same.
    (day / name).write_bytes(gzip.compress(body, compresslevel=1, mtime=0))
    stats.objects += 1


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssm_detect.replay.corpus", description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-object", type=int, default=1000)
    parser.add_argument("--ssm-share", type=float, default=CorpusMix.ssm_share)
    parser.add_argument("--principals", type=int, default=CorpusMix.principals)
    parser.add_argument("--days", type=float, default=CorpusMix.span / timedelta(days=1))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stats = write_corpus(
        args.folder,
        args.records,
        per_object=args.per_object,
        mix=CorpusMix(
            ssm_share=args.ssm_share, principals=args.principals, span=timedelta(days=args.days)
        ),
        seed=args.seed,
    )
    sys.stdout.write(json.dumps(stats.__dict__) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
