"""Small builders over the files in events/: load a real record, change a field, run it.

Tests start from a real CloudTrail record and change only what the scenario is about, so the
rest of the record stays as CloudTrail writes it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from detections import all_detections
from detections.base import Detection
from ssm_detect.findings import Finding
from ssm_detect.ingest import to_event
from ssm_detect.pipeline import Pipeline
from ssm_detect.principal import PrincipalKeying
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.memory import MemoryStateStore
from tests.conftest import EVENTS

SEND_COMMAND = "send_command_success.json"
CREATE_DOCUMENT = "create_document_command_new_principal.json"
T0 = datetime(2025, 3, 10, 10, 0, 0, tzinfo=UTC)


@cache
def _file(name: str) -> str:
    return (EVENTS / name).read_text()


def load_payload(name: str) -> Any:
    """The file's JSON as delivered (an EventBridge envelope for every file in events/)."""
    return json.loads(_file(name))


def load_record(name: str) -> dict[str, Any]:
    """The CloudTrail record inside an event file, as a fresh, mutable copy."""
    payload = load_payload(name)
    record = payload["detail"] if isinstance(payload, dict) and "detail" in payload else payload
    assert isinstance(record, dict), name
    return copy.deepcopy(record)


def envelope(record: dict[str, Any]) -> dict[str, Any]:
    """Wrap a record in a real EventBridge envelope (taken from an event file)."""
    wrapped: dict[str, Any] = load_payload(SEND_COMMAND)
    wrapped["id"] = f"envelope-{record.get('eventID', 'x')}"
    wrapped["detail"] = record
    return wrapped


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def send_command(
    instance_ids: Sequence[str] = ("i-0aaaaaaaaaaaaaaa1",),
    *,
    event_id: str = "sc-1",
    at: datetime = T0,
    template: str = SEND_COMMAND,
    targets: list[dict[str, Any]] | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """A successful SendCommand record from `template`, naming exactly these instances."""
    record = load_record(template)
    record["eventID"] = event_id
    record["eventTime"] = iso(at)
    request = record.setdefault("requestParameters", {})
    request["instanceIds"] = list(instance_ids)
    request.pop("targets", None)
    if targets is not None:
        request["targets"] = targets
    command = (record.get("responseElements") or {}).get("command")
    if command is not None:
        command["instanceIds"] = list(instance_ids)
        command["targets"] = targets or []
    if error_code is not None:
        record["errorCode"] = error_code
        record["responseElements"] = None
    return record


def create_document(
    *,
    event_id: str = "cd-1",
    at: datetime = T0,
    template: str = CREATE_DOCUMENT,
    name: str = "Ops-Doc",
) -> dict[str, Any]:
    """A successful CreateDocument (Command document) record from `template`."""
    record = load_record(template)
    record["eventID"] = event_id
    record["eventTime"] = iso(at)
    record["requestParameters"]["name"] = name
    return record


def parse(record: dict[str, Any], keying: PrincipalKeying = PrincipalKeying.ROLE) -> SsmEvent:
    event = to_event(record, keying)
    assert isinstance(event, SsmEvent), event
    return event


class Runner:
    """A pipeline over an in-memory store: feed records, get the findings of each."""

    def __init__(
        self,
        settings: Settings | None = None,
        detections: Iterable[Detection] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.store = MemoryStateStore()
        chosen = all_detections() if detections is None else tuple(detections)
        self.pipeline = Pipeline(chosen, self.store, self.settings)

    def process(self, record: dict[str, Any]) -> list[Finding]:
        return self.pipeline.process(parse(record, self.settings.principal_keying)).findings

    def fired(self, record: dict[str, Any], detection_id: str) -> list[Finding]:
        return [f for f in self.process(record) if f.detection_id == detection_id]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
