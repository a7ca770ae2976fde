"""One cold start of the deployed package (or of the floor), timed from inside.

Run by the runtime's interpreter with PYTHONPATH=bench/package/task:bench/package/runtime
(bench/package.py), never with this repository on the path: what it imports is the package.

    python3.13 bench/cold_child.py handler EVENT.json    # import handler.app, first event
    python3.13 bench/cold_child.py floor                 # import boto3, the three clients
    python3.13 bench/cold_child.py floor_pydantic        # the floor, then one pydantic model
    python3.13 bench/cold_child.py profile EVENT.json    # cProfile of the first invocation

Prints one JSON line of timings (milliseconds), then leaves without the interpreter's
teardown (`os._exit`): Lambda freezes an execution environment after the invocation, it never
bills nor waits for a process exit, so neither the floor's nor the package's is counted.
Standard library only.

The handler's first event makes the AWS calls the floor does not (state, ledger, SNS, Security
Hub). The time spent blocked on them (connecting, waiting for the answers' bytes) is counted
on the socket class itself, so nothing of the HTTP stack is imported early: `waiting_ms`.
"""

import time

_STARTED = time.perf_counter()

import json  # noqa: E402 - the clock starts first
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

_WAITED = [0.0]


def _timed(method):  # noqa: ANN001, ANN202 - a socket method, wrapped as it is
    def blocking(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            _WAITED[0] += time.perf_counter() - started

    return blocking


for _name in ("connect", "recv", "recv_into"):
    setattr(socket.socket, _name, _timed(getattr(socket.socket, _name)))


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
    """Import, then the first invocation in its two parts: the runtime it builds first (boto3,
    the clients, settings: `app.runtime`, cached, so the invocation reuses it) and the event."""
    event = json.loads(Path(event_file).read_text())
    before, cpu_before = time.perf_counter(), time.process_time()
    from handler import app  # noqa: PLC0415 - what is measured

    imported, cpu_imported = time.perf_counter(), time.process_time()
    app.runtime(Context.invoked_function_arn.split(":")[4])
    wired = time.perf_counter()
    app.lambda_handler(event, Context())
    done, cpu_done = time.perf_counter(), time.process_time()
    return {
        "import_ms": (imported - before) * 1e3,
        "first_event_ms": (done - imported) * 1e3,
        "wiring_ms": (wired - imported) * 1e3,
        "event_ms": (done - wired) * 1e3,
        "waiting_ms": _WAITED[0] * 1e3,
        "import_cpu_ms": (cpu_imported - cpu_before) * 1e3,
        "first_event_cpu_ms": (cpu_done - cpu_imported) * 1e3,
    }


def floor() -> dict[str, float]:
    before, cpu_before = time.perf_counter(), time.process_time()
    import boto3  # noqa: PLC0415

    imported, cpu_imported = time.perf_counter(), time.process_time()
    for name in ("dynamodb", "sns", "securityhub"):
        boto3.client(name)
    done, cpu_done = time.perf_counter(), time.process_time()
    return {
        "import_ms": (imported - before) * 1e3,
        "clients_ms": (done - imported) * 1e3,
        "import_cpu_ms": (cpu_imported - cpu_before) * 1e3,
        "clients_cpu_ms": (cpu_done - cpu_imported) * 1e3,
    }


def floor_pydantic() -> dict[str, float]:
    """The floor, then the least a handler that parses with pydantic adds to it: importing
    pydantic, declaring one small model of a CloudTrail record and validating one (which
    builds its schema). Nothing of ssm-detect is imported."""
    timings = floor()
    before, cpu_before = time.perf_counter(), time.process_time()
    from datetime import datetime  # noqa: PLC0415
    from typing import Any  # noqa: PLC0415

    from pydantic import BaseModel, ConfigDict, Field  # noqa: PLC0415

    class Record(BaseModel):
        model_config = ConfigDict(extra="allow", defer_build=True)

        event_id: str = Field(alias="eventID")
        event_time: datetime = Field(alias="eventTime")
        event_source: str = Field(alias="eventSource")
        event_name: str = Field(alias="eventName")
        user_identity: dict[str, Any] = Field(alias="userIdentity")
        request_parameters: dict[str, Any] | None = Field(None, alias="requestParameters")

    Record.model_validate(
        {
            "eventID": "e",
            "eventTime": "2025-03-03T00:00:00Z",
            "eventSource": "ssm.amazonaws.com",
            "eventName": "SendCommand",
            "userIdentity": {"type": "AssumedRole"},
            "requestParameters": {"documentName": "AWS-RunShellScript"},
        }
    )
    done, cpu_done = time.perf_counter(), time.process_time()
    timings["pydantic_ms"] = (done - before) * 1e3
    timings["pydantic_cpu_ms"] = (cpu_done - cpu_before) * 1e3
    return timings


MODES = {"floor": floor, "floor_pydantic": floor_pydantic}


def profile(event_file: str) -> None:
    """The first invocation under cProfile (after the import), slowest first by own time."""
    import cProfile  # noqa: PLC0415
    import io  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    event = json.loads(Path(event_file).read_text())
    from handler import app  # noqa: PLC0415

    profiler = cProfile.Profile()
    profiler.runcall(app.lambda_handler, event, Context())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(25)
    sys.stdout.write(out.getvalue())


if __name__ == "__main__" and sys.argv[1] == "profile":
    profile(sys.argv[2])
    sys.stdout.flush()
    os._exit(0)
elif __name__ == "__main__":
    timings = handler(sys.argv[2]) if sys.argv[1] == "handler" else MODES[sys.argv[1]]()
    timings["in_process_ms"] = (time.perf_counter() - _STARTED) * 1e3
    timings["cpu_ms"] = time.process_time() * 1e3
    sys.stdout.write(json.dumps(timings) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
