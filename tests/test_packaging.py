"""What `sam build` packages must match what the tests ran with."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_lambda_requirements_pin_the_same_versions_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = dict(dep.split("==") for dep in project["dependencies"])
    lines = (ROOT / "src" / "requirements.txt").read_text().splitlines()
    packaged = dict(
        line.split("==")
        for line in (ln.strip() for ln in lines)
        if line and "==" in line and not line.startswith("#")
    )
    assert packaged
    # boto3 comes from the Lambda runtime; everything else must be pinned identically.
    assert packaged == {name: version for name, version in pinned.items() if name != "boto3"}
