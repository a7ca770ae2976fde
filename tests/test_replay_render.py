"""The terminal table: short principals, coloured severities, and a layout that keeps the
principal readable on a narrow terminal."""

from __future__ import annotations

import pytest
from rich.console import Console

from ssm_detect.findings import Finding, PrincipalRef
from ssm_detect.render.local import findings_table, short_detection, short_principal
from tests.builders import Runner, send_command

SSO_PATH = "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/us-west-2"


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("arn:aws:iam::111122223333:role/PlatformOps", "role/PlatformOps"),
        ("arn:aws:iam::111122223333:role/service-role/Deployer", "role/service-role/Deployer"),
        ("arn:aws:iam::111122223333:user/ci-runner", "user/ci-runner"),
        ("arn:aws:iam::111122223333:root", "root"),
        ("arn:aws-us-gov:iam::111122223333:user/gov", "user/gov"),
        (
            f"{SSO_PATH}/AWSReservedSSO_PowerUserAccess_9a8b7c6d5e4f3a2b/alice",
            "sso/PowerUserAccess/alice",
        ),
        (f"{SSO_PATH}/SampleRole/bobson.dugnutt", "sso/SampleRole/bobson.dugnutt"),
        (
            "arn:aws:iam::111122223333:role/AWSReservedSSO_ReadOnly_0123456789abcdef/bo",
            "sso/ReadOnly/bo",
        ),
        (
            "arn:aws:sts::111122223333:assumed-role/PlatformOps/dana",
            "assumed-role/PlatformOps/dana",
        ),
        ("service:ssm.amazonaws.com", "service:ssm.amazonaws.com"),
    ],
)
def test_short_principal_drops_what_the_account_column_says(key: str, shown: str) -> None:
    assert short_principal(PrincipalRef(key=key, type="AssumedRole")) == shown


def test_short_detection_drops_the_shared_prefix() -> None:
    assert short_detection("AWS.SSM.RareCommandDocumentCreator") == "RareCommandDocumentCreator"


def findings() -> list[Finding]:
    three = ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", "i-0aaaaaaaaaaaaaaa3"]
    return Runner().process(send_command(three))


def render(width: int, *, color: bool = False) -> str:
    console = Console(width=width, force_terminal=color, color_system="standard" if color else None)
    with console.capture() as captured:
        console.print(findings_table(findings(), width))
    return captured.get()


def test_table_colours_severity() -> None:
    out = render(160, color=True)
    high = next(line for line in out.splitlines() if "SendCommand" in line)
    assert "\x1b[1;31mHIGH" in high  # bold red


def test_table_on_a_wide_terminal_has_every_column() -> None:
    header = render(160).splitlines()[2].split()
    assert header == [
        "severity",
        "detection",
        "principal",
        "account",
        "first",
        "seen",
        "(UTC)",
        "n",
        "instances",
    ]
    assert "i-0aaaaaaaaaaaaaaa1 +2" in render(160)


@pytest.mark.parametrize("width", [80, 100])
def test_table_on_a_narrow_terminal_drops_instances_before_the_principal(width: int) -> None:
    out = render(width)
    assert "role/PlatformOps" in out
    assert "instances" not in out
