"""Bytecode for the deployed package: compile it for the function's runtime, and check it.

`sam build` copies src/ without `__pycache__` and installs the dependencies without compiling
them, and Lambda's code directory (/var/task) is read-only: without `.pyc` files in the zip,
every cold start compiles every module it imports again, and throws the result away.

    python3.13 tools/bytecode.py compile .aws-sam/build     # run BY the runtime's interpreter
    python tools/bytecode.py verify .aws-sam/build --runtime python3.13

The files are compiled as *unchecked hash-based* `.pyc` (PEP 552): Python loads them without
looking at the source. The default (timestamp) `.pyc` records the source's modification time,
and a zip stores times at two-second resolution in local time, so after `sam deploy` zips the
package and Lambda unzips it the recorded time may no longer match, and every `.pyc` would be
judged stale and recompiled, in memory, at every cold start. The package is immutable once
built, so a check against the source could only ever cost time.

Standard library only: `verify` runs under any Python 3.11+ (the tests use it), `compile`
under the runtime's own interpreter, whose magic number is the one that counts.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import py_compile
import re
import sys
from collections.abc import Iterator
from pathlib import Path

# importlib.util.MAGIC_NUMBER of each Lambda Python runtime (Lib/importlib/_bootstrap_external.py
# of that release; fixed for a minor version once it is final).
MAGIC_NUMBERS = {
    "python3.11": 3495,
    "python3.12": 3531,
    "python3.13": 3571,
}
_FLAG_HASH_BASED = 0b01
_FLAG_CHECK_SOURCE = 0b10
# Not modules: package metadata, and wheels' `.data` folders (scripts, headers) that pip
# installs as they are and nothing imports.
_SKIPPED_FOLDERS = re.compile(r"\.(dist-info|data|egg-info)$")


def runtime_of(version: tuple[int, int]) -> str:
    return f"python{version[0]}.{version[1]}"


def modules(root: Path) -> Iterator[Path]:
    """Every `.py` file under `root` that an import could load."""
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).parts
        if not any(_SKIPPED_FOLDERS.search(part) or part == "__pycache__" for part in relative):
            yield path


def cached_path(module: Path, runtime: str) -> Path:
    """Where `runtime` looks for the module's bytecode (no optimisation level: Lambda runs
    Python without -O)."""
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    return module.parent / "__pycache__" / f"{module.stem}.{tag}.pyc"


def problems(root: Path, runtime: str) -> list[str]:
    """Why some module under `root` would be compiled at import time; empty when none would."""
    magic = MAGIC_NUMBERS[runtime]
    found = []
    for module in modules(root):
        pyc = cached_path(module, runtime)
        name = module.relative_to(root)
        try:
            header = pyc.read_bytes()[:16]
        except OSError:
            found.append(f"{name}: no {pyc.name}")
            continue
        if len(header) < 16 or header[2:4] != b"\r\n":
            found.append(f"{name}: {pyc.name} is not a .pyc file")
        elif int.from_bytes(header[:2], "little") != magic:
            number = int.from_bytes(header[:2], "little")
            found.append(f"{name}: {pyc.name} has magic number {number}, {runtime} needs {magic}")
        elif int.from_bytes(header[4:8], "little") != _FLAG_HASH_BASED:
            # Timestamp-based, or hash-based but checked against the source at every import.
            found.append(f"{name}: {pyc.name} is not an unchecked hash-based .pyc")
    return found


def compile_tree(root: Path) -> bool:
    """Compile every module under `root` for the running interpreter; False if any failed."""
    ok = True
    for module in modules(root):
        ok &= bool(
            compileall.compile_file(
                module,
                quiet=1,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("compile", "verify"))
    parser.add_argument("root", type=Path, help="the build output, e.g. .aws-sam/build")
    parser.add_argument(
        "--runtime",
        default=runtime_of(sys.version_info[:2]),
        choices=sorted(MAGIC_NUMBERS),
        help="the function's runtime (default: this interpreter's)",
    )
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"{args.root} is not a folder")
    if args.action == "compile":
        running = runtime_of(sys.version_info[:2])
        if running != args.runtime:
            parser.error(f"compile with the runtime's interpreter ({args.runtime}), not {running}")
        if int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little") != MAGIC_NUMBERS[running]:
            parser.error(f"this {running} has an unexpected magic number: update MAGIC_NUMBERS")
        if not compile_tree(args.root):
            sys.stderr.write("bytecode: some modules did not compile (above)" + "\n")
            return 1
    found = problems(args.root, args.runtime)
    for line in found[:50]:
        sys.stderr.write(f"bytecode: {line}" + "\n")
    if found:
        sys.stderr.write(f"bytecode: {len(found)} module(s) without {args.runtime} bytecode" + "\n")
        return 1
    count = sum(1 for _ in modules(args.root))
    sys.stdout.write(f"bytecode: {count} modules under {args.root} have {args.runtime} bytecode\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
