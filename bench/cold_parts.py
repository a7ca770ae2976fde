"""Where a cold start's CPU goes, part by part, in one fresh process of the deployed package.

Run by the runtime's interpreter on the package (bench/package.py writes it), several times:

    PYTHONPATH=bench/package/task:bench/package/runtime-boto3-<version> \\
        python3.13 bench/cold_parts.py

Each part is imported after the ones before it, so it is charged only for what it adds: the
floor's part first (boto3 and the three clients), then pydantic, Powertools and the handler's
own packages in the order the handler imports them. Prints one JSON line of CPU milliseconds
(process time: other processes on a busy machine do not count). Standard library only.
"""

import importlib
import itertools
import json
import sys
import time

_MARKS = [("start", time.process_time())]


def _mark(name: str) -> None:
    _MARKS.append((name, time.process_time()))


def main() -> None:
    import boto3  # noqa: PLC0415

    _mark("import boto3")
    for name in ("dynamodb", "sns", "securityhub"):
        boto3.client(name)
    _mark("3 clients")
    import pydantic.main  # noqa: PLC0415

    _mark("import pydantic")

    class First(pydantic.main.BaseModel):
        value: int

    First(value=1)
    _mark("pydantic's first schema (its lazily loaded machinery)")
    from aws_lambda_powertools import Logger, Metrics  # noqa: PLC0415

    Logger()
    Metrics()
    _mark("Powertools Logger + Metrics")
    importlib.import_module("ssm_detect.ingest")

    _mark("ssm_detect.ingest: record and call models, SsmEvent")
    importlib.import_module("detections")

    _mark("detections: the registry's modules")
    importlib.import_module("ssm_detect.processing")

    _mark("ssm_detect.processing: delivery, ledger")
    importlib.import_module("ssm_detect.wiring")

    _mark("ssm_detect.wiring: settings, sinks")
    importlib.import_module("handler.app")

    _mark("handler.app: the rest")


if __name__ == "__main__":
    main()
    parts = {b[0]: round((b[1] - a[1]) * 1e3, 1) for a, b in itertools.pairwise(_MARKS)}
    sys.stdout.write(json.dumps(parts) + "\n")
