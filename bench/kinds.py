"""The event kinds the handler benchmarks measure, built from the files in events/.

A kind is a measured event and the events that must come first (untimed, uncounted). Every
repetition runs on a principal (and document) of its own, so it starts from the same state:
`isolate` renames the role and document in the whole sequence and gives every event a new
eventID.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
ACCOUNT = "111122223333"
REGION = "us-east-1"
TABLE = "ssm-detect-bench"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ssm-detect"
_NAMESPACE = uuid.UUID("5f1d4c1e-0b7a-4f57-9a43-3c1b2f9a7d10")


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    event: str
    setup: tuple[str, ...] = ()


KINDS = (
    Kind(
        "non_ssm", "non-SSM record (ec2 DescribeInstances)", "panther_unrelated_describe_instances"
    ),
    Kind("send_command_failed", "SendCommand, failed (AccessDenied)", "send_command_access_denied"),
    Kind(
        "send_command_below",
        "SendCommand below the fan-out threshold (1 instance)",
        "send_command_success",
    ),
    Kind(
        "send_command_crossing",
        "SendCommand crossing the threshold (3rd instance in 1 h)",
        "fanout_split_third",
        ("fanout_split_first", "fanout_split_second"),
    ),
    Kind(
        "send_command_three_at_once",
        "SendCommand to 3 instances at once (crosses in 1 call)",
        "panther_send_command_three_instances",
    ),
    Kind(
        "repeat_in_suppression",
        "SendCommand repeat inside the suppression window",
        "fanout_split_second",
        ("fanout_split_first",),
    ),
    Kind(
        "create_document_new",
        "CreateDocument (Command) by a new principal",
        "create_document_command_new_principal",
    ),
    Kind(
        "create_document_known",
        "CreateDocument (Command) by a known principal",
        "create_document_same_role_other_session",
        ("create_document_command_new_principal",),
    ),
)


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return loaded


def _renamed_tokens(events: list[dict[str, Any]]) -> set[str]:
    """Role, user and customer-document names in the sequence: what keys the state."""
    tokens = set()
    for envelope in events:
        detail = envelope.get("detail", {})
        identity = detail.get("userIdentity", {})
        issuer = identity.get("sessionContext", {}).get("sessionIssuer", {})
        for name in (issuer.get("userName"), identity.get("userName")):
            if name:
                tokens.add(name)
        request = detail.get("requestParameters") or {}
        for name in (request.get("name"), request.get("documentName")):
            if isinstance(name, str) and name and not name.startswith("AWS-"):
                tokens.add(name)
    return tokens


def isolate(events: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """The sequence with its principal and documents renamed `<name>-<tag>` and new ids."""
    text = json.dumps(events)
    for token in sorted(_renamed_tokens(events), key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(token)}(?![\w-])", f"{token}-{tag}", text)
    renamed: list[dict[str, Any]] = json.loads(text)
    for envelope in renamed:
        envelope["id"] = str(uuid.uuid5(_NAMESPACE, f"{tag}:{envelope['id']}"))
        detail = envelope.get("detail")
        if isinstance(detail, dict) and "eventID" in detail:
            detail["eventID"] = str(uuid.uuid5(_NAMESPACE, f"{tag}:{detail['eventID']}"))
    return renamed


def sequence(kind: Kind, tag: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(setup events, measured event) for one repetition of `kind`."""
    events = isolate([load(name) for name in (*kind.setup, kind.event)], tag)
    return events[:-1], events[-1]


def lambda_environment(**extra: str) -> dict[str, str]:
    """What Lambda and template.yaml put in the function's environment (fake credentials)."""
    return {
        "STATE_TABLE_NAME": TABLE,
        "FINDINGS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:ssm-detect-findings",
        "SECURITY_HUB_ENABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "ssm-detect",
        "POWERTOOLS_METRICS_NAMESPACE": "SsmDetect",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIABENCHMARKFAKEKEY",
        "AWS_SECRET_ACCESS_KEY": "bench-fake-secret",
        "AWS_SESSION_TOKEN": "bench-fake-token",
        "AWS_LAMBDA_FUNCTION_NAME": "ssm-detect",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        **extra,
    }


@dataclass(frozen=True)
class Context:
    """The Lambda context the handler reads (as Lambda passes it)."""

    function_name: str = "ssm-detect"
    function_version: str = "$LATEST"
    invoked_function_arn: str = FUNCTION_ARN
    memory_limit_in_mb: int = 256
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/ssm-detect"
    log_stream_name: str = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def envelope(record: dict[str, Any]) -> dict[str, Any]:
    """A CloudTrail record as EventBridge delivers it to the function."""
    return {
        "version": "0",
        "id": str(uuid.uuid5(_NAMESPACE, str(record.get("eventID")))),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ssm",
        "account": record.get("recipientAccountId", ACCOUNT),
        "time": record.get("eventTime"),
        "region": record.get("awsRegion", REGION),
        "resources": [],
        "detail": record,
    }


def lambda_stream(path: Path) -> list[dict[str, Any]]:
    """The corpus's SendCommand and CreateDocument records (what the EventBridge rule sends
    the function), as envelopes in event-time order."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records.sort(key=lambda r: (r["eventTime"], r["eventID"]))
    return [envelope(r) for r in records]
