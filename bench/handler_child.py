"""The real Lambda handler in a process of its own, talking HTTP to local endpoints.

The parent sets the Lambda environment, with `AWS_ENDPOINT_URL_DYNAMODB` (DynamoDB Local, or
moto behind bench/aws_stub.py) and `AWS_ENDPOINT_URL_{SNS,SECURITYHUB}` (bench/aws_stub.py).
Nothing in the handler is replaced: it builds its runtime and clients as in Lambda.

    python -m bench.handler_child cold OUT.json
    python -m bench.handler_child latency OUT.json --repeats 200 [--stream FILE.jsonl]
    python -m bench.handler_child memory OUT.json --invocations 10000

Results go to OUT.json; stdout carries the handler's own log and metric lines (discarded).
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402 - the clock starts before anything else is imported
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from itertools import cycle  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from bench.kinds import ACCOUNT, KINDS, Context, lambda_stream, sequence  # noqa: E402


def _rss_kb() -> int:
    """Current resident set size (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cold(args: argparse.Namespace) -> dict[str, Any]:
    """Import, wiring and the first two invocations of a fresh process, each timed."""
    before_import = time.perf_counter()
    from handler import app  # noqa: PLC0415 - importing it is what is measured

    imported = time.perf_counter()
    rss_after_import = _rss_kb()
    app.runtime(ACCOUNT)  # what the first invocation builds: settings, sinks, 3 boto3 clients
    wired = time.perf_counter()
    below = next(k for k in KINDS if k.name == "send_command_below")
    context = Context()
    first = sequence(below, f"cold-{args.tag}-1")[1]
    second = sequence(below, f"cold-{args.tag}-2")[1]
    app.lambda_handler(first, context)
    invoked = time.perf_counter()
    app.lambda_handler(second, context)
    again = time.perf_counter()
    return {
        "bench_imports_ms": (before_import - _STARTED) * 1000,
        "import_ms": (imported - before_import) * 1000,
        "wiring_ms": (wired - imported) * 1000,
        "first_invocation_ms": (invoked - wired) * 1000,
        "second_invocation_ms": (again - invoked) * 1000,
        "rss_after_import_kb": rss_after_import,
        "rss_after_second_invocation_kb": _rss_kb(),
    }


def latency(args: argparse.Namespace) -> dict[str, Any]:
    from handler import app  # noqa: PLC0415

    context = Context()
    # Warm up: the first invocation builds the runtime and opens connections.
    for kind in KINDS:
        setup, event = sequence(kind, "warmup")
        for earlier in (*setup, event):
            app.lambda_handler(earlier, context)
    samples: dict[str, list[float]] = {kind.name: [] for kind in KINDS}
    for repeat in range(args.repeats):
        for kind in KINDS:  # interleaved, so drift in the machine hits every kind alike
            setup, event = sequence(kind, f"lat{repeat}")
            for earlier in setup:
                app.lambda_handler(earlier, context)
            started = time.perf_counter()
            app.lambda_handler(event, context)
            samples[kind.name].append((time.perf_counter() - started) * 1000)
    out: dict[str, Any] = {"samples_ms": samples}
    if args.stream:
        durations = []
        for event in lambda_stream(args.stream):
            started = time.perf_counter()
            app.lambda_handler(event, context)
            durations.append((time.perf_counter() - started) * 1000)
        out["stream_ms"] = durations
    return out


def memory(args: argparse.Namespace) -> dict[str, Any]:
    from handler import app  # noqa: PLC0415

    context = Context()
    checkpoints = {0: {"rss_kb": _rss_kb(), "peak_kb": _peak_kb()}}
    marks = {1, 100, 1000, 2500, 5000, 7500, args.invocations}
    done = 0
    started = time.perf_counter()
    for round_number, kind in enumerate(cycle(KINDS)):
        setup, event = sequence(kind, f"mem{round_number}")
        for each in (*setup, event):
            app.lambda_handler(each, context)
            done += 1
            if done in marks:
                checkpoints[done] = {"rss_kb": _rss_kb(), "peak_kb": _peak_kb()}
            if done >= args.invocations:
                return {
                    "invocations": done,
                    "seconds": time.perf_counter() - started,
                    "checkpoints": checkpoints,
                }
    raise AssertionError("unreachable")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("cold", "latency", "memory"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--stream", type=Path)
    parser.add_argument("--tag", default="0")
    args = parser.parse_args()
    result = {"cold": cold, "latency": latency, "memory": memory}[args.mode](args)
    result["peak_kb"] = _peak_kb()
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
