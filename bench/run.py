"""`make bench`: cold start, AWS calls per event, warm latency, replay throughput, memory, cost.

Every figure is a median over repeated runs; every ratio is against a floor measured in the
same run on the same machine. Prints a table and writes bench/results.json. Each part runs in
processes of its own (bench/calls.py, bench/handler_child.py, `ssm-detect replay`), so what is
measured never shares a process with the harness.

    python -m bench             # the full suite (what `make bench` runs)
    python -m bench --quick     # a smaller corpus and fewer repetitions, for trying changes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cost, package, report
from bench.corpus import (
    CorpusSpec,
    ensure_corpus,
    ensure_scaled_corpus,
    first_files,
    lambda_events_path,
)
from bench.kinds import ACCOUNT, KINDS, REGION, TABLE, lambda_environment, sequence

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results.json"
DOCS = ROOT / "docs" / "performance.md"
CORPUS_ROOT = ROOT / "bench" / "corpus"

TARGET_COLD_RATIO = 1.1
"""Cold start of the deployed package (import + first event) / the floor (issue 16)."""
TARGET_REPLAY_RATIO = 0.5
TARGET_HANDLER_MB = 100.0
TARGET_REPLAY_MB = 100.0
FLAT_TOLERANCE = 0.10
"""Replay memory counts as flat when peak RSS at 1M is within 10% of peak RSS at 250k."""

FLOOR_CLIENTS = (
    "import boto3\nboto3.client('dynamodb')\nboto3.client('sns')\nboto3.client('securityhub')\n"
)
FLOOR_PARSE = """
import gzip, json, sys
from pathlib import Path
def files(paths):
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.name.endswith(".json.gz"))
        else:
            yield p
records = 0
for path in files(sys.argv[1:]):
    records += len(json.loads(gzip.decompress(path.read_bytes()))["Records"])
print(records)
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    max_rss_kb: int
    cpu_seconds: float
    stdout: str
    stderr: str


TIME = Path("/usr/bin/time")


def run(command: Sequence[str], env: dict[str, str], *, keep_output: bool = True) -> Run:
    """Run `command` to completion: wall time, CPU time (user + system) and peak RSS.

    The RSS comes from GNU time (`%M`) wrapping the command, not from our own `wait4`: Linux
    starts a child's high-water mark at its parent's RSS when the child is forked, so a child
    of this (larger) process would report at least our size.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        argv = [str(TIME), "-f", "%M %U %S", "-o", rss.name, *command] if TIME.exists() else command
        started = time.perf_counter()
        process = subprocess.run(
            list(argv),
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out if keep_output else subprocess.DEVNULL,
            stderr=err,
            check=False,
        )
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        text = rss.read().strip().splitlines()
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])} ... exited {process.returncode}:\n{stderr[-3000:]}"
        )
    fields = text[-1].split() if text else []
    if len(fields) == 3:
        return Run(seconds, int(fields[0]), float(fields[1]) + float(fields[2]), stdout, stderr)
    return Run(seconds, 0, 0.0, stdout, stderr)


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing from the caller's AWS configuration leaks in."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return env | {"PYTHONUNBUFFERED": "1", "AWS_CONFIG_FILE": "/dev/null"} | extra


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Endpoints for the handler processes: DynamoDB Local (or moto over HTTP) and SNS / Security Hub
# stubs.
# --------------------------------------------------------------------------------------------


@dataclass
class Endpoints:
    dynamodb: str
    stub: str
    dynamodb_backend: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb,
            "AWS_ENDPOINT_URL_SNS": self.stub,
            "AWS_ENDPOINT_URL_SECURITYHUB": self.stub,
        }


@contextlib.contextmanager
def endpoints(workdir: Path, *, dynamodb_local: bool = True) -> Iterator[Endpoints]:
    with contextlib.ExitStack() as stack:
        local = _dynamodb_local(workdir, stack) if dynamodb_local else None
        stub_process = subprocess.Popen(
            [PYTHON, "-m", "bench.aws_stub", *([] if local else ["--dynamodb"])],
            cwd=ROOT,
            env=base_env(),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        stack.callback(_stop, stub_process)
        line = stub_process.stdout.readline() if stub_process.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"bench.aws_stub did not start: {line!r}")
        stub = f"http://127.0.0.1:{line.split()[1]}"
        if local:
            backend = f"DynamoDB Local ({local[1]})"
            found = Endpoints(local[0], stub, backend)
        else:
            backend = "moto behind bench/aws_stub.py over HTTP (DynamoDB Local not used)"
            found = Endpoints(stub, stub, backend)
        _create_table(found.dynamodb)
        yield found


def _dynamodb_local(workdir: Path, stack: contextlib.ExitStack) -> tuple[str, str] | None:
    """DynamoDB Local through the tests' own launcher (tests/dynamodb_local.py), if it works
    here: the jar from `make dynamodb-local`, and Java."""
    try:
        from tests.dynamodb_local import (  # noqa: PLC0415
            find_jar,
            start_dynamodb_local,
            stop_dynamodb_local,
        )

        jar = find_jar()
        if jar is None:
            say("DynamoDB Local: no jar (make dynamodb-local); using moto over HTTP")
            return None
        process, server, _log = start_dynamodb_local(workdir)
    except Exception as error:  # noqa: BLE001 - any failure: fall back, and say so
        say(f"DynamoDB Local unavailable ({type(error).__name__}: {error}); using moto")
        return None
    stack.callback(stop_dynamodb_local, process)
    return server.endpoint, jar.parent.name


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _create_table(endpoint: str) -> None:
    import boto3  # noqa: PLC0415

    from ssm_detect.state.tables import ensure_state_table  # noqa: PLC0415

    env = lambda_environment()
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    ensure_state_table(client, TABLE)


# --------------------------------------------------------------------------------------------
# 1. Cold start
# --------------------------------------------------------------------------------------------


def cold_start(rounds: int) -> dict[str, Any]:
    """Wall time of fresh processes (run before any server is started, so nothing else of
    ours competes for the CPU)."""
    # The function's environment as Lambda sets it; template.yaml declares an empty
    # AWS_ENDPOINT_URL_DYNAMODB, so it is there (empty) in Lambda too.
    env = base_env(**lambda_environment(AWS_ENDPOINT_URL_DYNAMODB=""))
    commands = {
        "interpreter": [PYTHON, "-c", "pass"],
        "floor": [PYTHON, "-c", FLOOR_CLIENTS],
        "handler_import": [PYTHON, "-c", "import handler.app"],
        "handler_import_and_wiring": [
            PYTHON,
            "-c",
            f"import handler.app as app\napp.runtime({ACCOUNT!r})",
        ],
    }
    for command in commands.values():  # compile .pyc files and warm the page cache
        run(command, env)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[int]] = {name: [] for name in commands}
    names = list(commands)
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            result = run(commands[name], env)
            walls[name].append(result.seconds * 1000)
            cpus[name].append(result.cpu_seconds * 1000)
            rss[name].append(result.max_rss_kb)
    floor = median(walls["floor"])
    floor_cpu = median(cpus["floor"]) or 1.0
    summary: dict[str, Any] = {
        name: {
            "median_ms": round(median(walls[name]), 1),
            "min_ms": round(min(walls[name]), 1),
            "max_rss_mb": round(median(rss[name]) / 1024, 1),
            "ratio_to_floor": round(median(walls[name]) / floor, 3),
            "cpu_ms": round(median(cpus[name]), 1),
            "cpu_ratio_to_floor": round(median(cpus[name]) / floor_cpu, 3),
        }
        for name in commands
    }
    summary["rounds"] = rounds
    return summary


COLD_CHILD = ROOT / "bench" / "cold_child.py"


def lambda_python() -> str | None:
    """The function's runtime interpreter (mk/sam.mk passes the one `make build` used)."""
    return os.environ.get("LAMBDA_PYTHON") or None


def package_cold_start(where: Endpoints, rounds: int, python: str) -> dict[str, Any]:
    """Cold start as Lambda bills it, on the package `sam deploy` uploads (bench/package.py):
    a fresh process of the runtime's interpreter that imports handler.app and handles its
    first event (a SendCommand, against the local endpoints), the same package without its
    bytecode, and the floor (import boto3 + the three clients), interleaved."""
    built = package.prepare(python)
    env = base_env(**lambda_environment(**where.env()), PYTHONDONTWRITEBYTECODE="1")
    below = next(k for k in KINDS if k.name == "send_command_below")
    variants = {
        "floor": (str(built.runtime), "floor"),
        "floor_with_pydantic": (built.pythonpath(bytecode=True), "floor_pydantic"),
        "package": (built.pythonpath(bytecode=True), "handler"),
        "package_without_bytecode": (built.pythonpath(bytecode=False), "handler"),
    }
    samples: dict[str, list[Run]] = {name: [] for name in variants}
    inside: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    names = list(variants)
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(-1, rounds):  # round -1 warms the page cache, and is not kept
            for name in names[index % len(names) :] + names[: index % len(names)]:
                path, mode = variants[name]
                event = Path(tmp) / f"{name}-{index}.json"
                event.write_text(json.dumps(sequence(below, f"pkg-{name}-{index}")[1]))
                cmd = [python, str(COLD_CHILD), mode, *([str(event)] if mode == "handler" else [])]
                result = run(cmd, env | {"PYTHONPATH": path})
                if index < 0:
                    continue
                samples[name].append(result)
                for key, value in json.loads(result.stdout.splitlines()[-1]).items():
                    inside[name].setdefault(key, []).append(value)
        event = Path(tmp) / "profiled.json"
        event.write_text(json.dumps(sequence(below, "pkg-profiled")[1]))
        profiled = run(
            [python, str(COLD_CHILD), "profile", str(event)],
            env | {"PYTHONPATH": built.pythonpath(bytecode=True)},
        )
    floor = median([r.seconds for r in samples["floor"]])
    floor_cpu = median([r.cpu_seconds for r in samples["floor"]]) or 1.0
    summary: dict[str, Any] = {
        name: {
            "median_ms": round(median([r.seconds for r in runs]) * 1000, 1),
            "min_ms": round(min(r.seconds for r in runs) * 1000, 1),
            "ratio_to_floor": round(median([r.seconds for r in runs]) / floor, 3),
            "cpu_ratio_to_floor": round(median([r.cpu_seconds for r in runs]) / floor_cpu, 3),
            "max_rss_mb": round(median([r.max_rss_kb for r in runs]) / 1024, 1),
            "inside_ms": {k: round(median(v), 1) for k, v in inside[name].items()},
        }
        for name, runs in samples.items()
    }
    for name, runs in samples.items():
        # The same processes, less the time blocked on the AWS calls of the first event (the
        # endpoints' answers: what the floor, which makes no call, never waits for).
        waits = inside[name].get("waiting_ms", [0.0] * len(runs))
        apart = [r.seconds * 1000 - w for r, w in zip(runs, waits, strict=True)]
        summary[name]["median_ms_without_waiting"] = round(median(apart), 1)
        summary[name]["ratio_without_waiting"] = round(median(apart) / (floor * 1000), 3)
    summary |= {
        "first_event_profile": _profile_lines(profiled.stdout),
        "rounds": rounds,
        "python": python,
        "built": ".aws-sam/build/DetectorFunction (make build), native modules for this machine",
        "first_event": f"events/{below.event}.json (SendCommand), against the local endpoints",
    }
    return summary


def package_import_profile(python: str) -> list[str]:
    """`python -X importtime` of handler.app from the deployed package (its bytecode)."""
    built = package.prepare(python)
    env = base_env(
        **lambda_environment(), PYTHONPATH=built.pythonpath(), PYTHONDONTWRITEBYTECODE="1"
    )
    result = run([python, "-X", "importtime", "-c", "import handler.app"], env)
    return _slowest_imports(result.stderr)


FLOOR_BREAKDOWN = """
import time
started = time.perf_counter()
import boto3
imported = time.perf_counter()
for name in ("dynamodb", "sns", "securityhub"):
    boto3.client(name)
done = time.perf_counter()
import_ms, clients_ms = (imported - started) * 1e3, (done - imported) * 1e3
print('{"import_ms": %.3f, "clients_ms": %.3f}' % (import_ms, clients_ms))
"""


def first_invocation(breakdown_rounds: int, where: Endpoints) -> dict[str, Any]:
    """Inside fresh processes: import, wiring (settings, sinks, the three boto3 clients: the
    work the handler defers from import to its first invocation), then two invocations on the
    local endpoints; and the floor's own import / client split."""
    breakdown_env = base_env(**lambda_environment(**where.env()))
    floor_env = base_env(**lambda_environment(AWS_ENDPOINT_URL_DYNAMODB=""))
    parts: dict[str, list[float]] = {}
    floor_parts: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cold.json"
        for index in range(breakdown_rounds):
            cmd = [PYTHON, "-m", "bench.handler_child", "cold", str(out), "--tag", str(index)]
            result = run(cmd, breakdown_env, keep_output=False)
            loaded = json.loads(out.read_text())
            loaded["process_wall_ms"] = result.seconds * 1000
            for key, value in loaded.items():
                if isinstance(value, int | float):
                    parts.setdefault(key, []).append(value)
            floor = json.loads(run([PYTHON, "-c", FLOOR_BREAKDOWN], floor_env).stdout)
            for key, value in floor.items():
                floor_parts.setdefault(key, []).append(value)
    return {
        "handler": {key: round(median(v), 1) for key, v in parts.items()},
        "floor": {key: round(median(v), 1) for key, v in floor_parts.items()},
        "rounds": breakdown_rounds,
    }


def import_profile() -> list[str]:
    """`python -X importtime`: the slowest imports of the handler module (cumulative)."""
    env = base_env(**lambda_environment())
    result = run([PYTHON, "-X", "importtime", "-c", "import handler.app"], env)
    return _slowest_imports(result.stderr)


def _slowest_imports(stderr: str) -> list[str]:
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        if own.strip().isdigit():
            rows.append((int(cumulative), int(own), name.rstrip()))
    rows.sort(reverse=True)
    return [
        f"{cumulative / 1000:7.1f} ms cumulative {own / 1000:6.1f} ms self  {name}"
        for cumulative, own, name in rows[:20]
    ]


# --------------------------------------------------------------------------------------------
# 2-3-5. Handler: calls, latency, memory
# --------------------------------------------------------------------------------------------


def calls(stream: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "calls.json"
        cmd = [PYTHON, "-m", "bench.calls", str(out), "--stream", str(stream)]
        run(cmd, base_env(), keep_output=False)
        loaded: dict[str, Any] = json.loads(out.read_text())
    for kind in loaded["kinds"]:
        kind["targets"] = _call_targets(kind)
    return loaded


def _call_targets(kind: dict[str, Any]) -> dict[str, Any]:
    findings, notified = kind["findings"], kind["notified"]
    stateful = len(kind["stateful_detections"])
    checks = {
        # Events no detection needs: no call at all.
        "no_calls_when_unneeded": kind["total"] == 0 if stateful == 0 and findings == 0 else None,
        "state_round_trips_per_stateful_detection": kind["state"] <= stateful,
        "sns_calls_per_notified_finding": kind["sns"] <= notified,
        "securityhub_calls_per_finding": kind["securityhub"] <= findings,
    }
    return {name: value for name, value in checks.items() if value is not None}


def latency(where: Endpoints, repeats: int, stream: Path) -> dict[str, Any]:
    env = base_env(**lambda_environment(**where.env()))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "latency.json"
        cmd = [PYTHON, "-m", "bench.handler_child", "latency", str(out)]
        run([*cmd, "--repeats", str(repeats), "--stream", str(stream)], env, keep_output=False)
        loaded = json.loads(out.read_text())
    kinds = {
        name: {
            "p50_ms": round(percentile(samples, 50), 2),
            "p99_ms": round(percentile(samples, 99), 2),
            "mean_ms": round(statistics.fmean(samples), 2),
            "n": len(samples),
        }
        for name, samples in loaded["samples_ms"].items()
    }
    stream_ms = loaded.get("stream_ms", [])
    return {
        "dynamodb": where.dynamodb_backend,
        "sinks": "SNS and Security Hub: fixed answers from bench/aws_stub.py over HTTP",
        "kinds": kinds,
        "stream": {
            "events": len(stream_ms),
            "p50_ms": round(percentile(stream_ms, 50), 2) if stream_ms else None,
            "p99_ms": round(percentile(stream_ms, 99), 2) if stream_ms else None,
            "mean_ms": round(statistics.fmean(stream_ms), 2) if stream_ms else None,
            "billed_ms_mean": statistics.fmean(math.ceil(v) for v in stream_ms)
            if stream_ms
            else None,
        },
    }


def memory(where: Endpoints, invocations: int) -> dict[str, Any]:
    env = base_env(**lambda_environment(**where.env()))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "memory.json"
        cmd = [PYTHON, "-m", "bench.handler_child", "memory", str(out)]
        result = run([*cmd, "--invocations", str(invocations)], env, keep_output=False)
        loaded = json.loads(out.read_text())
    points = loaded["checkpoints"]
    after_first = points.get("1", points.get(1, {})).get("rss_kb", 0)
    last = points[str(invocations)]["rss_kb"]
    return {
        "dynamodb": where.dynamodb_backend,
        "invocations": loaded["invocations"],
        "seconds": round(loaded["seconds"], 1),
        "max_rss_mb": round(result.max_rss_kb / 1024, 1),
        "rss_mb_by_invocation": {k: round(v["rss_kb"] / 1024, 1) for k, v in points.items()},
        "growth_after_first_invocation_mb": round((last - after_first) / 1024, 1),
    }


# --------------------------------------------------------------------------------------------
# 4-5. Replay
# --------------------------------------------------------------------------------------------


# Through bench/reap.py: the readers' fork server outlives the main process by a moment and is
# not its waited-for child, so GNU time would miss its CPU time without the subreaper.
REPLAY = [PYTHON, "-m", "bench.reap", str(BIN / "ssm-detect"), "replay"]


def replay_once(paths: Sequence[Path], *extra: str) -> tuple[Run, dict[str, Any]]:
    """`ssm-detect replay PATHS --output jsonl`: the run, and its summary line (stderr)."""
    result = run([*REPLAY, *map(str, paths), "--output", "jsonl", *extra], base_env())
    summary = next(
        (json.loads(line) for line in reversed(result.stderr.splitlines()) if line.startswith("{")),
        {},
    )
    summary["findings_lines"] = len(result.stdout.splitlines())
    return result, summary


def floor_once(paths: Sequence[Path]) -> Run:
    return run([PYTHON, "-c", FLOOR_PARSE, *map(str, paths)], base_env())


def replay(spec: CorpusSpec, rounds: int) -> dict[str, Any]:
    """Replay vs floor over the whole corpus, interleaved (run on a machine otherwise idle)."""
    folder, manifest = ensure_corpus(CORPUS_ROOT, spec)
    floor_runs: list[Run] = []
    replay_runs: list[Run] = []
    one_reader: list[Run] = []
    summary: dict[str, Any] = {}
    load_at_start = os.getloadavg()
    for index in range(rounds):
        order = ("floor", "replay", "jobs1") if index % 2 == 0 else ("jobs1", "replay", "floor")
        for which in order:
            if which == "jobs1":
                one_reader.append(replay_once([folder], "--jobs", "1")[0])
            elif which == "floor":
                floor_runs.append(floor_once([folder]))
                if int(floor_runs[-1].stdout.strip()) != manifest["records"]:
                    raise RuntimeError("the floor did not read every record")
            else:
                result, summary = replay_once([folder])
                replay_runs.append(result)
                seen = summary.get("events_seen")
                if seen is not None and seen != manifest["records"]:
                    raise RuntimeError(f"the replay saw {seen} records, not every record")
    floor_s = median([r.seconds for r in floor_runs])
    replay_s = median([r.seconds for r in replay_runs])
    floor_cpu = median([r.cpu_seconds for r in floor_runs])
    replay_cpu = median([r.cpu_seconds for r in replay_runs])
    return {
        "corpus": {k: v for k, v in manifest.items() if k != "by_file"}
        | {"folder": str(folder.relative_to(ROOT))},
        "command": f"ssm-detect replay {folder.relative_to(ROOT)} --output jsonl "
        f"(--jobs default: {os.cpu_count()}), and with --jobs 1",
        "floor": "one process: gzip.decompress + json.loads of every file (standard library)",
        "rounds": rounds,
        "floor_seconds": round(floor_s, 2),
        "replay_seconds": round(replay_s, 2),
        "ratio": round(replay_s / floor_s, 3),
        "floor_cpu_seconds": round(floor_cpu, 2),
        "replay_cpu_seconds": round(replay_cpu, 2),
        "cpu_ratio": round(replay_cpu / floor_cpu, 3) if floor_cpu else None,
        "all_seconds": {
            "floor": [round(r.seconds, 2) for r in floor_runs],
            "replay": [round(r.seconds, 2) for r in replay_runs],
        },
        "records_per_second": round(manifest["records"] / replay_s),
        "floor_records_per_second": round(manifest["records"] / floor_s),
        "floor_max_rss_mb": round(median([r.max_rss_kb for r in floor_runs]) / 1024, 1),
        "max_rss_mb": round(median([r.max_rss_kb for r in replay_runs]) / 1024, 1),
        "summary": summary,
        "scaling_row": _scaling_row(manifest["records"], floor_runs, replay_runs)
        | {"load_average": {"start": load_at_start, "end": os.getloadavg()}},
        "one_reader_seconds": round(median([r.seconds for r in one_reader]), 2),
        "one_reader_ratio": round(median([r.seconds for r in one_reader]) / floor_s, 3),
        "one_reader_max_rss_mb": round(median([r.max_rss_kb for r in one_reader]) / 1024, 1),
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
    }


def replay_at(spec: CorpusSpec, rounds: int, copies: int = 1) -> dict[str, Any]:
    """One more corpus size: the floor and the replay, interleaved, `rounds` each. With
    `copies`, the corpus is `spec`'s that many times over, each copy re-stamped later in time
    with ids of its own (bench/corpus.py, `ensure_scaled_corpus`): distinct records, made in
    minutes rather than generated for most of an hour."""
    if copies > 1:
        folder, manifest = ensure_scaled_corpus(CORPUS_ROOT, spec, copies)
    else:
        folder, manifest = ensure_corpus(CORPUS_ROOT, spec)
    records = manifest["records"]
    floors: list[Run] = []
    replays: list[Run] = []
    load_at_start = os.getloadavg()
    for index in range(rounds):
        for which in ("floor", "replay") if index % 2 == 0 else ("replay", "floor"):
            if which == "floor":
                floors.append(floor_once([folder]))
            else:
                result, summary = replay_once([folder])
                if summary.get("events_seen") != records:
                    raise RuntimeError(f"the replay of {folder.name} did not see every record")
                if summary.get("duplicates"):
                    raise RuntimeError(f"the replay of {folder.name} read duplicates")
                replays.append(result)
    row = _scaling_row(records, floors, replays)
    row["load_average"] = {"start": load_at_start, "end": os.getloadavg()}
    row["corpus"] = str(folder.relative_to(ROOT))
    if copies > 1:
        row["note"] = f"{spec.key} x {copies}, re-stamped (bench/corpus.py)"
        row["corpus_generation_seconds"] = manifest["generated_seconds_now"]
    return row


def _scaling_row(records: int, floors: list[Run], replays: list[Run]) -> dict[str, Any]:
    floor_s = median([r.seconds for r in floors])
    replay_s = median([r.seconds for r in replays])
    return {
        "records": records,
        "rounds": len(replays),
        "floor_seconds": round(floor_s, 2),
        "replay_seconds": round(replay_s, 2),
        "ratio": round(replay_s / floor_s, 3),
        "records_per_second": round(records / replay_s),
        "floor_records_per_second": round(records / floor_s),
        "max_rss_mb": round(max(r.max_rss_kb for r in replays) / 1024, 1),
        "floor_max_rss_mb": round(max(r.max_rss_kb for r in floors) / 1024, 1),
        "floor_cpu_seconds": round(median([r.cpu_seconds for r in floors]), 2),
        "replay_cpu_seconds": round(median([r.cpu_seconds for r in replays]), 2),
    }


def replay_memory(spec: CorpusSpec, rounds: int) -> list[dict[str, Any]]:
    """Peak RSS of the replay over the first quarter and half of the corpus (path order).

    Memory only: these runs share the CPU with the handler memory test, so their times are
    not throughput figures."""
    folder, manifest = ensure_corpus(CORPUS_ROOT, spec)
    points = []
    for target in (spec.records // 4, spec.records // 2):
        files, held = first_files(folder, manifest, target)
        runs = [replay_once(files)[0] for _ in range(rounds)]
        points.append(
            {"records": held, "max_rss_mb": round(median([r.max_rss_kb for r in runs]) / 1024, 1)}
        )
    return points


def memory_scaling(points: list[dict[str, Any]], whole: dict[str, Any]) -> dict[str, Any]:
    scaling = [*points, {"records": whole["corpus"]["records"], "max_rss_mb": whole["max_rss_mb"]}]
    xs = [p["records"] / 1e6 for p in scaling]
    ys = [p["max_rss_mb"] for p in scaling]
    slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
    return {
        "memory_scaling": scaling,
        "memory_slope_mb_per_million_records": round(slope, 2),
        "memory_flat": ys[-1] <= ys[0] * (1 + FLAT_TOLERANCE),
    }


def replay_profile(spec: CorpusSpec, records: int) -> list[str]:
    """cProfile of the replay over the first `records` records: the top functions."""
    folder, manifest = ensure_corpus(CORPUS_ROOT, spec)
    files, _ = first_files(folder, manifest, records)
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "replay.prof"
        code = (
            "import cProfile, sys\n"
            "from ssm_detect.cli import main\n"
            f"cProfile.run('main(sys.argv[1:])', {str(stats_file)!r})\n"
        )
        args = ["replay", *map(str, files), "--output", "jsonl"]
        run([PYTHON, "-c", code, *args], base_env(), keep_output=False)
        script = (
            "import pstats, sys\n"
            f"s = pstats.Stats({str(stats_file)!r}, stream=sys.stdout)\n"
            "s.strip_dirs().sort_stats('tottime').print_stats(18)\n"
        )
        text = run([PYTHON, "-c", script], base_env()).stdout
    return _profile_lines(text)


def _profile_lines(text: str) -> list[str]:
    """pstats' output from its summary line on, without the blank lines."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "function calls" in line), 0)
    return lines[start:]


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    if "package_cold_start" in results:
        ratio = results["package_cold_start"]["package"]["ratio_to_floor"]
        found.append(
            {
                "target": "cold start, deployed package, import + first event / floor "
                f"<= {TARGET_COLD_RATIO}",
                "value": ratio,
                "holds": ratio <= TARGET_COLD_RATIO,
            }
        )
        found.append(pydantic_bound(results["package_cold_start"]))
    kinds = results["calls"]["kinds"]
    for name in (
        "no_calls_when_unneeded",
        "state_round_trips_per_stateful_detection",
        "sns_calls_per_notified_finding",
        "securityhub_calls_per_finding",
    ):
        checked = [k for k in kinds if name in k["targets"]]
        failing = [k["kind"] for k in checked if not k["targets"][name]]
        found.append(
            {
                "target": f"calls: {name.replace('_', ' ')}",
                "value": f"{len(checked) - len(failing)}/{len(checked)} kinds",
                "holds": not failing,
                **({"failing": failing} if failing else {}),
            }
        )
    if "replay" in results:
        found.extend(replay_targets(results))
    found.append(
        {
            "target": f"handler peak RSS over {results['memory']['invocations']:,} warm "
            f"invocations <= {TARGET_HANDLER_MB:.0f} MB",
            "value": results["memory"]["max_rss_mb"],
            "holds": results["memory"]["max_rss_mb"] <= TARGET_HANDLER_MB,
        }
    )
    return found


def pydantic_bound(cold: dict[str, Any]) -> dict[str, Any]:
    """Not a target: the least cold start of any handler that parses with pydantic, in the
    same run. The floor plus importing pydantic and validating one small model: when that
    alone is above the target, no work on ssm-detect's own modules can meet it while the
    Lambda parses with pydantic (DEVELOPERS.md's product shape)."""
    ratio = cold["floor_with_pydantic"]["ratio_to_floor"]
    return {
        "target": "(bound, not a target) floor + pydantic with one model / floor: the least "
        f"a pydantic-parsing handler can reach; the target needs <= {TARGET_COLD_RATIO}",
        "value": ratio,
        "holds": ratio <= TARGET_COLD_RATIO,
        "informational": True,
    }


def replay_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's replay targets: time against the floor, peak RSS at every size, flat memory."""
    found = [
        {
            "target": f"replay time / floor <= {TARGET_REPLAY_RATIO}",
            "value": results["replay"]["ratio"],
            "holds": results["replay"]["ratio"] <= TARGET_REPLAY_RATIO,
        }
    ]
    found.extend(
        {
            "target": f"replay time / floor at {row['records']:,} records <= {TARGET_REPLAY_RATIO}",
            "value": row["ratio"],
            "holds": row["ratio"] <= TARGET_REPLAY_RATIO,
        }
        for row in results.get("replay_scaling", [])
        if row["records"] != results["replay"]["corpus"]["records"]
    )
    found.extend(
        {
            "target": f"replay peak RSS at {row['records']:,} records <= {TARGET_REPLAY_MB:.0f} MB",
            "value": row["max_rss_mb"],
            "holds": row["max_rss_mb"] <= TARGET_REPLAY_MB,
        }
        for row in results.get("replay_scaling", [])
    )
    if "memory_flat" in results["replay"]:
        found.append(
            {
                "target": "replay peak memory flat in input size (1M within 10% of 250k)",
                "value": f"{results['replay']['memory_slope_mb_per_million_records']} MB/M",
                "holds": results["replay"]["memory_flat"],
            }
        )
    return found


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [f"ssm-detect benchmarks: {m['nproc']} x {m['cpu']}, Python {m['python']}", ""]
    for section in (_cold_rows, _call_rows, _latency_rows, _replay_rows, _cost_rows):
        lines.extend(section(results))
        lines.append("")
    lines.append("Targets")
    for target in results["targets"]:
        mark = _mark(target)
        lines.append(f"   [{mark:6}] {target['target']}: {target['value']}")
    return "\n".join(lines)


def _cold_rows(results: dict[str, Any]) -> list[str]:
    cold = results["cold_start"]
    rows = [
        f"1. Cold start (wall time of a fresh process, median of {cold['rounds']})",
        f"   {'process':44} {'median':>9} {'ratio':>7} {'max RSS':>9} {'CPU ratio':>10}",
    ]
    labels = {
        "interpreter": "python -c pass",
        "floor": "FLOOR: import boto3 + 3 clients",
        "handler_import": "import handler.app (Lambda env)",
        "handler_import_and_wiring": "import handler.app + runtime (3 clients)",
    }
    for key, label in labels.items():
        row = cold[key]
        rows.append(
            f"   {label:44} {row['median_ms']:7.0f}ms {row['ratio_to_floor']:6.2f}x "
            f"{row['max_rss_mb']:7.1f}MB {row['cpu_ratio_to_floor']:9.2f}x"
        )
    if "package_cold_start" in results:
        pkg = results["package_cold_start"]
        rows += [
            f"   deployed package ({pkg['built']}; {Path(pkg['python']).name} "
            f"{pkg['python'].split('/versions/')[-1].split('/')[0]}), median of {pkg['rounds']}:",
            f"   {'process':44} {'median':>9} {'ratio':>7} {'max RSS':>9} {'CPU ratio':>10}",
        ]
        labels_pkg = {
            "floor": "FLOOR: import boto3 + 3 clients",
            "package": "handler.app + first event (with .pyc)",
            "package_without_bytecode": "handler.app + first event (no .pyc)",
            "floor_with_pydantic": "floor + pydantic + 1 model validated",
        }
        for key, label in labels_pkg.items():
            row = pkg[key]
            rows.append(
                f"   {label:44} {row['median_ms']:7.0f}ms {row['ratio_to_floor']:6.2f}x "
                f"{row['max_rss_mb']:7.1f}MB {row['cpu_ratio_to_floor']:9.2f}x"
            )
        inside, floor_inside = pkg["package"]["inside_ms"], pkg["floor"]["inside_ms"]
        bare = pkg["package_without_bytecode"]["inside_ms"]
        rows += [
            f"   {'handler.app + first event, less its AWS calls':44} "
            f"{pkg['package']['median_ms_without_waiting']:7.0f}ms "
            f"{pkg['package']['ratio_without_waiting']:6.2f}x   (the endpoints' answers taken out)",
            "   where the time goes (inside the process, medians; CPU in brackets):",
            f"     package: import {inside['import_ms']:.0f} ms [{_cpu(inside, 'import')}] "
            f"(without .pyc: {bare['import_ms']:.0f} ms), first event "
            f"{inside['first_event_ms']:.0f} ms [{_cpu(inside, 'first_event')}] = runtime "
            f"(boto3, 3 clients, settings) {inside.get('wiring_ms', 0):.0f} ms + the event "
            f"{inside.get('event_ms', 0):.0f} ms, of which {inside.get('waiting_ms', 0):.0f} ms "
            "blocked on the endpoints",
            f"     floor:   import boto3 {floor_inside['import_ms']:.0f} ms "
            f"[{_cpu(floor_inside, 'import')}], 3 clients {floor_inside['clients_ms']:.0f} ms "
            f"[{_cpu(floor_inside, 'clients')}]",
            "   the rows above the package's: the development venv (the harness's Python, src/)",
        ]
    first = results["first_invocation"]
    handler, floor = first["handler"], first["floor"]
    rows += [
        f"   inside the process (median of {first['rounds']}):",
        f"     handler: import {handler['import_ms']:.0f} ms | first invocation: wiring + "
        f"3 clients {handler['wiring_ms']:.0f} ms, then the SendCommand "
        f"{handler['first_invocation_ms']:.0f} ms (the next one: "
        f"{handler['second_invocation_ms']:.0f} ms)",
        f"     floor:   import boto3 {floor['import_ms']:.0f} ms, 3 clients "
        f"{floor['clients_ms']:.0f} ms",
    ]
    return rows


def _mark(target: dict[str, Any]) -> str:
    if target.get("informational"):
        return "bound" if target["holds"] else "above"
    return "holds" if target["holds"] else "MISSED"


def _cpu(inside: dict[str, float], part: str) -> str:
    value = inside.get(f"{part}_cpu_ms")
    return "-" if value is None else f"{value:.0f} ms"


def _call_rows(results: dict[str, Any]) -> list[str]:
    rows = [
        "2. AWS calls per event (botocore before-call hooks, moto)",
        f"   {'event kind':58} {'state':>5} {'ledger':>6} {'sns':>4} {'hub':>4} "
        f"{'total':>5} {'fired':>5} {'notif':>5}",
    ]
    for kind in results["calls"]["kinds"]:
        failed = sum(kind["failed_conditional"].values())
        ledger = f"{kind['ledger']}" + (f"({failed}x)" if failed else "")
        rows.append(
            f"   {kind['title'][:58]:58} {kind['state']:>5} {ledger:>6} {kind['sns']:>4} "
            f"{kind['securityhub']:>4} {kind['total']:>5} {kind['findings']:>5} "
            f"{kind['notified']:>5}"
        )
    rows.append("   ledger n(kx): n calls, k of them failed conditional writes (billed as writes)")
    stream = results["calls"].get("stream")
    if stream and stream["events"]:
        n = stream["events"]
        rows.append(
            f"   corpus stream, {n} SendCommand/CreateDocument events, per event: "
            f"{stream['state'] / n:.2f} state, {stream['ledger'] / n:.2f} ledger, "
            f"{stream['sns'] / n:.2f} SNS, {stream['securityhub'] / n:.2f} Security Hub calls, "
            f"{stream['write_units'] / n:.2f} write units"
        )
    return rows


def _latency_rows(results: dict[str, Any]) -> list[str]:
    lat = results["latency"]
    rows = [
        f"3. Warm handler latency (DynamoDB: {lat['dynamodb']}; sinks: local stubs)",
        f"   {'event kind':58} {'p50':>8} {'p99':>8}",
    ]
    for kind in KINDS:
        row = lat["kinds"][kind.name]
        rows.append(f"   {kind.title[:58]:58} {row['p50_ms']:6.2f}ms {row['p99_ms']:6.2f}ms")
    stream = lat["stream"]
    if stream["events"]:
        label = f"corpus stream ({stream['events']} events)"
        rows.append(f"   {label:58} {stream['p50_ms']:6.2f}ms {stream['p99_ms']:6.2f}ms")
    return rows


def _replay_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    if "replay" in results:
        r = results["replay"]
        points = ", ".join(
            f"{p['records'] / 1e6:.2f}M: {p['max_rss_mb']:.0f} MB"
            for p in r.get("memory_scaling", [])
        )
        rows += [
            f"4. Replay throughput ({r['corpus']['records']:,} records, median of {r['rounds']})",
            f"   floor (gzip + json.loads) {r['floor_seconds']:.2f} s, replay "
            f"{r['replay_seconds']:.2f} s: {r['ratio']:.2f}x, {r['records_per_second']:,} "
            f"records/s (CPU time: {r['floor_cpu_seconds']:.2f} s vs "
            f"{r['replay_cpu_seconds']:.2f} s, {r['cpu_ratio']:.2f}x; RSS: the largest "
            "single process, main or reader)",
            f"   with --jobs 1 (one process, no readers): {r['one_reader_seconds']:.2f} s, "
            f"{r['one_reader_ratio']:.2f}x, {r['one_reader_max_rss_mb']:.0f} MB",
            "   by corpus size (replay / stdlib floor, same run; max RSS of the replay):",
            *(
                f"   {row['records']:>12,} records: {row['ratio']:.2f}x "
                f"({row['replay_seconds']:.1f} s vs {row['floor_seconds']:.1f} s, median of "
                f"{row['rounds']}), {row['records_per_second']:,} records/s vs "
                f"{row['floor_records_per_second']:,}, {row['max_rss_mb']:.0f} MB"
                + (
                    f", CPU {row['replay_cpu_seconds'] / row['floor_cpu_seconds']:.2f}x"
                    if row.get("floor_cpu_seconds")
                    else ""
                )
                + (f" ({row['note']})" if "note" in row else "")
                + (f", load {_load(row['load_average'])}" if "load_average" in row else "")
                for row in results.get("replay_scaling", [])
            ),
        ]
        if points:
            rows += [
                "",
                "5. Peak memory (max RSS)",
                f"   replay {points}; slope "
                f"{r['memory_slope_mb_per_million_records']} MB per million records",
            ]
    mem = results.get("memory")
    if mem is not None:
        rows.append(
            f"   handler, {mem['invocations']:,} warm invocations: {mem['max_rss_mb']:.1f} MB "
            f"(growth after the first invocation: {mem['growth_after_first_invocation_mb']} MB)"
        )
    return rows


def _load(load: dict[str, Sequence[float]]) -> str:
    """The 1-minute load average at a measurement's start and end."""
    return f"{load['start'][0]:.1f} -> {load['end'][0]:.1f}"


def _cost_rows(results: dict[str, Any]) -> list[str]:
    c = results["cost"]
    rows = [f"Cost per million events (us-east-1; {c['basis']})"]
    rows += [f"   {item['what']:60} ${item['usd']:8.2f}" for item in c["items"]]
    rows.append(f"   {'total':60} ${c['total_usd']:8.2f}")
    return rows


def measure(
    spec: CorpusSpec,
    *,
    quick: bool,
    skip_replay: bool,
    moto: bool = False,
    scaling_sizes: Sequence[tuple[int, int]] = (),
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    replay_too = not skip_replay
    timings: dict[str, float] = {}

    @contextlib.contextmanager
    def section(name: str) -> Iterator[None]:
        say(f"{name} ...")
        begun = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - begun, 1)

    python = lambda_python()
    with section("corpus"):
        _, manifest = ensure_corpus(CORPUS_ROOT, spec)
    stream = lambda_events_path(CORPUS_ROOT, spec)
    with section("cold start"):
        results["cold_start"] = cold_start(5 if quick else 15)
    with (
        tempfile.TemporaryDirectory() as tmp,
        endpoints(Path(tmp), dynamodb_local=not moto) as where,
    ):
        say(f"DynamoDB for the handler processes: {where.dynamodb_backend}")
        # Latency first: it also warms DynamoDB Local up (a JVM), so that the first-invocation
        # figures measure the handler, not the JIT compiler of the database.
        with section("warm latency"):
            results["latency"] = latency(where, 30 if quick else 150, stream)
        with section("first invocation"):
            results["first_invocation"] = first_invocation(3 if quick else 7, where)
        if python:
            with section("cold start, deployed package"):
                results["package_cold_start"] = package_cold_start(
                    where, 5 if quick else 15, python
                )
        else:
            say("LAMBDA_PYTHON not set: the deployed package's cold start is not measured")
        # Side by side: the handler's and the replay's peak RSS and the call counts do not
        # depend on sharing the CPU; together they take the time of the longest.
        with section("handler memory, replay memory, AWS calls"), ThreadPoolExecutor(3) as pool:
            counted = pool.submit(calls, stream)
            subsets = pool.submit(replay_memory, spec, 1 if quick else 2) if replay_too else None
            results["memory"] = memory(where, 1000 if quick else 10_000)
            results["calls"] = counted.result()
            points = subsets.result() if subsets else []
    if replay_too:
        with section("replay"):
            results["replay"] = replay(spec, 2 if quick else 3)
            results["replay"] |= memory_scaling(points, results["replay"])
        rows = [results["replay"].pop("scaling_row")]
        for size, rounds in scaling_sizes:
            with section(f"replay at {size:,} records"):
                base, copies = _scaled(size, spec, scaling_sizes)
                rows.append(replay_at(base, rounds, copies))
        results["replay_scaling"] = sorted(rows, key=lambda row: row["records"])
    with section("profiles"):
        # Always taken (cheap), so docs/performance.md can quote them whatever the verdicts.
        results["profiles"] = {
            "handler_import (python -X importtime, slowest imports)": import_profile(),
            **(
                {
                    "deployed package, handler import (python3.13 -X importtime)": (
                        package_import_profile(python)
                    )
                }
                if python
                else {}
            ),
            "replay (cProfile over the first 100,000 records)": replay_profile(spec, 100_000),
        }
        if "package_cold_start" in results:
            results["profiles"][
                "deployed package, first invocation (cProfile, against the local endpoints)"
            ] = results["package_cold_start"].pop("first_event_profile")
    results["section_seconds"] = timings
    results["corpus_generation_seconds"] = manifest["generated_seconds_now"]
    return results


def _scaled(
    size: int, spec: CorpusSpec, others: Sequence[tuple[int, int]]
) -> tuple[CorpusSpec, int]:
    """(base corpus, copies) for a replay size: the largest smaller size of this run that
    divides it, copied (generating 10M records would take most of an hour on a shared
    machine); a size nothing divides is generated."""
    bases = [n for n in (spec.records, *(n for n, _ in others)) if n < size and size % n == 0]
    if not bases:
        return CorpusSpec(size), 1
    base = max(bases)
    return CorpusSpec(base), size // base


def _sizes(text: str) -> list[tuple[int, int]]:
    pairs = (item.split(":") for item in text.split(",") if item)
    return [(int(records), int(rounds)) for records, rounds in pairs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small corpus, few repetitions")
    parser.add_argument("--records", type=int, help="corpus size (default 1,000,000)")
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument(
        "--moto", action="store_true", help="moto instead of DynamoDB Local for parts 3 and 5"
    )
    parser.add_argument(
        "--scaling",
        default="300000:3,10000000:1",
        help="more replay sizes, RECORDS:ROUNDS,... (the 10M corpus takes minutes to generate)",
    )
    parser.add_argument(
        "--only",
        choices=("replay",),
        help="only the replay section and its --scaling sizes, into bench/results-replay.json "
        "(docs/performance.md untouched): a minute or two at 300k records",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    spec = CorpusSpec(args.records or (100_000 if args.quick else 1_000_000))
    arguments = list(argv if argv is not None else sys.argv[1:])
    if args.only == "replay":
        return replay_only(spec, args, arguments)
    args.out = args.out or RESULTS
    started = time.perf_counter()
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"make bench  (python -m bench {shlex.join(arguments)})".replace(" )", ")"),
        "machine": machine(),
    }
    scaling = [] if args.quick or not args.scaling else _sizes(args.scaling)
    results |= measure(
        spec,
        quick=args.quick,
        skip_replay=args.skip_replay,
        moto=args.moto,
        scaling_sizes=[s for s in scaling if s[0] != spec.records],
    )
    results["cost"] = cost.estimate(results)
    results["targets"] = targets(results)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["duration_seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    if (
        not args.quick
        and args.out == RESULTS
        and report.update(DOCS, report.figures(results, text))
    ):
        say(f"{DOCS.relative_to(ROOT)}: figures updated")
    print(text)
    for name, lines in results["profiles"].items():
        print(f"\nprofile: {name}")
        print("\n".join(f"   {line}" for line in lines))
    print(f"\n{args.out} written in {results['duration_seconds']} s")
    return 0


def replay_only(spec: CorpusSpec, args: argparse.Namespace, argv: list[str]) -> int:
    """`python -m bench --only replay [--records N] [--scaling ...]`: section 4 alone."""
    started = time.perf_counter()
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv),
        "machine": machine(),
    }
    others = [s for s in ([] if not args.scaling else _sizes(args.scaling)) if s[0] != spec.records]
    results["replay"] = replay(spec, 2 if args.quick else 3)
    rows = [results["replay"].pop("scaling_row")]
    for size, rounds in others:
        say(f"replay at {size:,} records ...")
        base, copies = _scaled(size, spec, others)
        rows.append(replay_at(base, rounds, copies))
    results["replay_scaling"] = sorted(rows, key=lambda row: row["records"])
    results["targets"] = replay_targets(results)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["duration_seconds"] = round(time.perf_counter() - started, 1)
    out = args.out or ROOT / "bench" / "results-replay.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    lines = [*_replay_rows(results), "", "Targets"]
    lines += [
        f"   [{'holds' if t['holds'] else 'MISSED':6}] {t['target']}: {t['value']}"
        for t in results["targets"]
    ]
    print("\n".join(lines))
    print(f"\n{out} written in {results['duration_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
