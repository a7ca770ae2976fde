"""Cold start of several variants of the deployed package against the floor, interleaved.

For measuring one change at a time (docs/performance.md, "Cold start: the steps"): make copies
of bench/package/task (written by `make bench`, or `bench.package.prepare`), put a variant of
src/ into each (its `handler`, `ssm_detect`, `detections` folders) and compile them with
`python3.13 tools/bytecode.py compile COPY --runtime python3.13`; then

    .venv/bin/python -m bench.cold_ab 8 before=/tmp/v0 after=/tmp/v1

runs ROUNDS rounds of the floor and each variant in rotating order (bench/cold_child.py, as
`make bench` does, against DynamoDB Local and the stubs) and prints medians: wall, CPU, and
the child's own split (import, first event, time blocked on the endpoints, CPU per part).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from bench import package
from bench.kinds import KINDS, lambda_environment, sequence
from bench.run import COLD_CHILD, base_env, endpoints, median, run


def main(argv: list[str]) -> int:
    rounds, named = int(argv[0]), dict(a.split("=", 1) for a in argv[1:])
    python = os.environ.get("LAMBDA_PYTHON", "python3.13")
    runtime = str(package.boto3_runtime(python))
    variants = {"floor": (runtime, "floor")} | {
        name: (f"{folder}:{runtime}", "handler") for name, folder in named.items()
    }
    below = next(k for k in KINDS if k.name == "send_command_below")
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    inside: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    names = list(variants)
    with tempfile.TemporaryDirectory() as tmp, endpoints(Path(tmp)) as where:
        env = base_env(**lambda_environment(**where.env()), PYTHONDONTWRITEBYTECODE="1")
        for index in range(-1, rounds):  # round -1 warms the page cache, and is not kept
            for name in names[index % len(names) :] + names[: index % len(names)]:
                path, mode = variants[name]
                event = Path(tmp) / f"{name}-{index}.json"
                event.write_text(json.dumps(sequence(below, f"ab-{name}-{index}")[1]))
                cmd = [python, str(COLD_CHILD), mode, *([str(event)] if mode == "handler" else [])]
                result = run(cmd, env | {"PYTHONPATH": path})
                if index < 0:
                    continue
                walls[name].append(result.seconds * 1000)
                cpus[name].append(result.cpu_seconds * 1000)
                for key, value in json.loads(result.stdout.splitlines()[-1]).items():
                    inside[name].setdefault(key, []).append(value)
    floor_wall, floor_cpu = median(walls["floor"]), median(cpus["floor"])
    for name in variants:
        wall, cpu = median(walls[name]), median(cpus[name])
        split = ", ".join(f"{k} {median(v):.0f}" for k, v in inside[name].items())
        print(
            f"{name:10} wall {wall:6.0f} ms ({wall / floor_wall:.2f}x)  "
            f"CPU {cpu:5.0f} ms ({cpu / floor_cpu:.2f}x)  | {split}"
        )
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
