"""One cold start of the deployed package (or of the floor), timed from inside.

Run by the runtime's interpreter with PYTHONPATH=bench/package/task:bench/package/runtime
(bench/package.py), never with this repository on the path: what it imports is the package.

    python3.13 bench/cold_child.py handler EVENT.json    # import handler.app, first event
    python3.13 bench/cold_child.py floor                 # import boto3, the three clients

Prints one JSON line of timings (milliseconds). Standard library only.
"""

import time

_STARTED = time.perf_counter()

import json  # noqa: E402 - the clock starts first
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


class Context:
    """What Lambda passes the handler (bench/kinds.py has the same)."""

    function_name = "ssm-detect"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:ssm-detect"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/ssm-detect"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def handler(event_file: str) -> dict[str, float]:
    event = json.loads(Path(event_file).read_text())
    before = time.perf_counter()
    from handler import app  # noqa: PLC0415 - what is measured

    imported = time.perf_counter()
    app.lambda_handler(event, Context())
    done = time.perf_counter()
    return {"import_ms": (imported - before) * 1e3, "first_event_ms": (done - imported) * 1e3}


def floor() -> dict[str, float]:
    before = time.perf_counter()
    import boto3  # noqa: PLC0415

    imported = time.perf_counter()
    for name in ("dynamodb", "sns", "securityhub"):
        boto3.client(name)
    done = time.perf_counter()
    return {"import_ms": (imported - before) * 1e3, "clients_ms": (done - imported) * 1e3}


if __name__ == "__main__":
    timings = handler(sys.argv[2]) if sys.argv[1] == "handler" else floor()
    timings["in_process_ms"] = (time.perf_counter() - _STARTED) * 1e3
    sys.stdout.write(json.dumps(timings) + "\n")
