"""The deployed package, runnable on this machine: what the cold-start benchmark measures.

`make build` (`sam build` + tools/bytecode.py) writes .aws-sam/build/DetectorFunction: src/,
the dependencies as arm64 wheels for python3.13, and their bytecode. This machine may not be
arm64, so the package is copied to bench/package/task with only its native extension modules
(`*.so`: pydantic_core, PyYAML's `_yaml`) swapped for this machine's build of the same
versions; every `.py` and `.pyc` is the one `sam deploy` uploads. A second copy,
bench/package/task-nopyc, has no bytecode: the package as `sam build` alone leaves it.

bench/package/runtime stands for the runtime's own /var/runtime: boto3 at the version
pyproject.toml pins, compiled (the runtime image ships its bytecode). The measured processes run
the runtime's interpreter with `PYTHONPATH=task:runtime` (Lambda's order) and
`PYTHONDONTWRITEBYTECODE=1`: /var/task is read-only, so nothing compiled at import is kept.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build" / "DetectorFunction"
HERE = ROOT / "bench" / "package"
_DIST_INFO = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)\.dist-info$")


@dataclass(frozen=True)
class Package:
    python: str
    task: Path
    task_without_bytecode: Path
    runtime: Path

    def pythonpath(self, *, bytecode: bool = True) -> str:
        task = self.task if bytecode else self.task_without_bytecode
        return f"{task}:{self.runtime}"


def prepare(python: str) -> Package:
    """The runnable copies of the last `make build` (rebuilt each run: cheap, and never stale)."""
    if not BUILD.is_dir():
        raise RuntimeError("no .aws-sam/build/DetectorFunction: run `make build` first")
    HERE.mkdir(exist_ok=True)
    task, bare = HERE / "task", HERE / "task-nopyc"
    for folder in (task, bare):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(BUILD, task)
    _swap_native_modules(python, task)
    shutil.copytree(task, bare, ignore=shutil.ignore_patterns("__pycache__"))
    return Package(python, task, bare, _runtime(python))


def boto3_runtime(python: str) -> Path:
    """The stand-in for the runtime's own boto3 (installed once per pinned version)."""
    return _runtime(python)


def _pins() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    return dict(re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', text))


def _swap_native_modules(python: str, task: Path) -> None:
    """Replace the package's foreign `*.so` files with this machine's, same versions."""
    foreign = [p for p in task.rglob("*.so") if not _loads_here(python, p)]
    if not foreign:
        return
    versions = {
        m["name"].lower().replace("_", "-"): m["version"]
        for d in task.iterdir()
        if (m := _DIST_INFO.match(d.name))
    }
    wheels = HERE / "wheels"
    wanted = [f"{name}=={version}" for name, version in versions.items()]
    _pip(python, "download", "--no-deps", "--only-binary=:all:", "-d", str(wheels), *wanted)
    for so in foreign:
        stem = so.name.split(".", 1)[0]
        folder = so.parent.relative_to(task)
        for wheel in wheels.glob("*.whl"):
            found = _so_in_wheel(wheel, folder, stem)
            if found is not None:
                (so.parent / found[0]).write_bytes(found[1])
                so.unlink()
                break
        else:
            raise RuntimeError(f"no native build of {so.relative_to(task)} for this machine")


def _loads_here(python: str, so: Path) -> bool:
    """Whether the interpreter would even consider the file (its platform tag matches)."""
    code = "import importlib.machinery as m, sys; print(json.dumps(m.EXTENSION_SUFFIXES))"
    out = subprocess.run(
        [python, "-c", "import json\n" + code], check=True, capture_output=True, text=True
    ).stdout
    return any(so.name.endswith(suffix) for suffix in json.loads(out) if suffix != ".so")


def _so_in_wheel(wheel: Path, folder: Path, stem: str) -> tuple[str, bytes] | None:
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            path = Path(name)
            if path.parent == folder and path.name.startswith(stem + ".") and name.endswith(".so"):
                return path.name, archive.read(name)
    return None


def _runtime(python: str) -> Path:
    """boto3 as the runtime provides it, installed once per pinned version."""
    version = _pins()["boto3"]
    runtime = HERE / f"runtime-boto3-{version}"
    if not (runtime / ".complete").exists():
        shutil.rmtree(runtime, ignore_errors=True)
        _pip(python, "install", "--no-compile", "--target", str(runtime), f"boto3=={version}")
        _compile_with(python, runtime)
        (runtime / ".complete").touch()
    return runtime


def _compile_with(python: str, folder: Path) -> None:
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", str(folder)], check=True, capture_output=True
    )


def _pip(python: str, *args: str) -> None:
    subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
    )
