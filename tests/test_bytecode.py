"""The deployed package carries bytecode for the function's runtime (tools/bytecode.py).

The package is rebuilt here the way `sam build` lays it out (src/ as it is, and the files of
every distribution src/requirements.txt installs, with their own dependencies), compiled by the
runtime's interpreter as `make build` does, and checked module by module. When a real
`make build` output is present, it is checked too.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import bytecode

BUILD = ROOT / ".aws-sam" / "build"


def _runtime() -> str:
    template = (ROOT / "template.yaml").read_text()
    runtimes = set(re.findall(r"^\s+Runtime:\s*(python3\.\d+)\s*$", template, re.MULTILINE))
    assert len(runtimes) == 1, runtimes
    return runtimes.pop()


RUNTIME = _runtime()


def _runtime_python() -> str | None:
    """The runtime's interpreter, found as mk/sam.mk finds it (PATH, then pyenv)."""
    version = RUNTIME.removeprefix("python")
    candidates = [
        shutil.which(RUNTIME),
        *sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/{RUNTIME}")),
    ]
    for candidate in candidates:
        if candidate is None:
            continue
        probe = [
            str(candidate),
            "-c",
            f"import sys; assert sys.version_info[:2] == ({version.replace('.', ', ')})",
        ]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:  # noqa: S603
            return str(candidate)
    return None


def _distributions(names: list[str]) -> set[str]:
    """The distributions pip would install for `names`, with their dependencies."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        for requirement in importlib.metadata.distribution(name).requires or []:
            if "extra ==" in requirement:
                continue
            todo.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return seen


def _package_like_sam_build(into: Path) -> Path:
    function = into / "DetectorFunction"
    shutil.copytree(
        ROOT / "src", function, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    lines = (ROOT / "src" / "requirements.txt").read_text().splitlines()
    required = [ln.split("==")[0].strip() for ln in lines if "==" in ln and not ln.startswith("#")]
    for name in _distributions(required):
        for file in importlib.metadata.distribution(name).files or []:
            if file.suffix == ".py" and ".." not in file.parts:
                target = function / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file.locate(), target)
    return function


@pytest.fixture(scope="module")
def compiled_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = _runtime_python()
    if python is None:
        pytest.skip(f"no {RUNTIME} on this machine (make build needs one too)")
    root = tmp_path_factory.mktemp("build")
    _package_like_sam_build(root)
    tool = str(ROOT / "tools" / "bytecode.py")
    subprocess.run(  # noqa: S603 - our own tool, by the runtime's interpreter
        [python, tool, "compile", str(root), "--runtime", RUNTIME], check=True, capture_output=True
    )
    return root


def test_the_runtime_is_one_the_tool_knows() -> None:
    assert RUNTIME in bytecode.MAGIC_NUMBERS
    assert f"--runtime {RUNTIME}" in (ROOT / "mk" / "sam.mk").read_text()


def test_every_module_of_src_and_the_dependencies_has_runtime_bytecode(
    compiled_package: Path,
) -> None:
    function = compiled_package / "DetectorFunction"
    names = {p.relative_to(function).as_posix() for p in bytecode.modules(function)}
    # The package really holds src/ and the dependencies, so the check below covers them.
    for expected in (
        "handler/app.py",
        "ssm_detect/ingest.py",
        "detections/__init__.py",
        "pydantic/main.py",
        "aws_lambda_powertools/logging/logger.py",
        "yaml/__init__.py",
        "typing_extensions.py",
    ):
        assert expected in names
    assert bytecode.problems(compiled_package, RUNTIME) == []
    for module in bytecode.modules(function):
        header = bytecode.cached_path(module, RUNTIME).read_bytes()[:8]
        assert int.from_bytes(header[:2], "little") == bytecode.MAGIC_NUMBERS[RUNTIME]
        assert int.from_bytes(header[4:8], "little") == 1  # hash-based, never checked


def _pyc_header(magic: int, flags: int) -> bytes:
    """The 16-byte header of a .pyc (PEP 552): magic, flags, then a hash or mtime + size."""
    return magic.to_bytes(2, "little") + b"\r\n" + flags.to_bytes(4, "little") + bytes(8)


def test_a_missing_foreign_or_checked_pyc_is_named(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    for name in ("a", "b", "c", "d", "e"):
        (package / f"{name}.py").write_text(f"{name.upper()} = 1\n")
    (tmp_path / "x-1.0.dist-info").mkdir()
    (tmp_path / "x-1.0.dist-info" / "not_a_module.py").write_text("")
    magic = bytecode.MAGIC_NUMBERS[RUNTIME]
    other = next(m for r, m in bytecode.MAGIC_NUMBERS.items() if r != RUNTIME)
    headers = {
        "b": _pyc_header(other, 1),  # another Python's bytecode under the runtime's name
        "c": _pyc_header(magic, 0),  # timestamp-based: stale after a zip round trip
        "d": _pyc_header(magic, 3),  # hash-based but checked against the source each import
        "e": _pyc_header(magic, 1),  # what `make build` writes
    }
    for name, header in headers.items():
        pyc = bytecode.cached_path(package / f"{name}.py", RUNTIME)
        pyc.parent.mkdir(exist_ok=True)
        pyc.write_bytes(header + b"code")
    found = bytecode.problems(tmp_path, RUNTIME)
    tag = bytecode.cached_path(package / "a.py", RUNTIME).name
    assert found == [
        f"pkg/a.py: no {tag}",
        f"pkg/b.py: {tag.replace('a.', 'b.', 1)} has magic number {other}, {RUNTIME} needs {magic}",
        f"pkg/c.py: {tag.replace('a.', 'c.', 1)} is not an unchecked hash-based .pyc",
        f"pkg/d.py: {tag.replace('a.', 'd.', 1)} is not an unchecked hash-based .pyc",
    ]


def test_the_real_build_output_when_there_is_one() -> None:
    if not BUILD.is_dir():
        pytest.skip("no .aws-sam/build here (make build)")
    assert bytecode.problems(BUILD, RUNTIME) == []
