"""Every event file through the real handler (state in moto), checked against the manifest.

Each file must fire exactly the detections its manifest entry lists, so each file is also a
negative test for every other detection.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import boto3
import pytest

from detections import all_detections
from detections.distributed_command import DistributedCommandDetection
from detections.rare_document_creator import RareCommandDocumentCreatorDetection
from ssm_detect.findings import Finding
from ssm_detect.ingest import records_in, to_event
from ssm_detect.pipeline import Outcome, Pipeline
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.dynamodb import DynamoDbStateStore
from tests.conftest import EVENTS, REGION, TABLE, Invoke, load_event

MANIFEST: dict[str, Any] = tomllib.loads((EVENTS / "manifest.toml").read_text())
CASES = MANIFEST["cases"]
DETECTION_IDS = {d.metadata.id for d in all_detections()}


def test_manifest_lists_every_event_file_once() -> None:
    listed = [case["file"] for case in CASES]
    on_disk = sorted(p.name for p in EVENTS.glob("*.json"))
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


def test_manifest_names_only_known_detections_and_files() -> None:
    for case in CASES:
        assert set(case["fires"]) <= DETECTION_IDS, case["file"]
        assert set(case.get("severity") or {}) <= set(case["fires"]), case["file"]
        for given in case.get("given_events", []):
            assert (EVENTS / given).is_file(), given


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_event_file_fires_exactly_its_manifest_entry(
    case: dict[str, Any], invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings the case needs (read when the handler wires itself, at its first event).
    for name, value in (case.get("env") or {}).items():
        monkeypatch.setenv(name, value)
    for given in case.get("given_events", []):
        invoke(load_event(given))
    event = load_event(case["file"])
    if case.get("given_state"):
        seed_given_state(event, case["given_state"])

    with capture_findings() as found:
        result = invoke(event)

    assert set(result["findings"]) == set(case["fires"]), case["title"]
    for detection_id, severity in (case.get("severity") or {}).items():
        assert found[detection_id].severity == severity, (detection_id, found[detection_id])
    assert all(count == 1 for count in result["findings"].values())
    assert result["bad_events"] == (1 if case["skipped"] else 0)


@contextmanager
def capture_findings() -> Iterator[dict[str, Finding]]:
    """The findings the handler's pipeline produced during the block, by detection id."""
    found: dict[str, Finding] = {}
    original = Pipeline.process

    def spy(self: Pipeline, event: SsmEvent) -> Outcome:
        outcome = original(self, event)
        found.update({f.detection_id: f for f in outcome.findings})
        return outcome

    with patch.object(Pipeline, "process", spy):
        yield found


def seed_given_state(event: dict[str, Any], given: dict[str, Any]) -> None:
    """Write the state the case needs through the detections' own updates, as if the principal
    had made the call earlier: a copy of the event, moved back in time."""
    store = DynamoDbStateStore(boto3.client("dynamodb", region_name=REGION), TABLE)
    settings = Settings()
    if "fanout" in given:
        spec = given["fanout"]
        prior = _earlier_copy(event, timedelta(minutes=spec["minutes_before"]))
        prior["requestParameters"] = {"instanceIds": spec["instance_ids"]}
        prior["responseElements"] = None
        ssm = _ssm_event(prior)
        update = DistributedCommandDetection().state_update(ssm, settings)
        assert update is not None
        store.apply(update)
    if "creator" in given:
        prior = _earlier_copy(event, timedelta(days=given["creator"]["days_before"]))
        store.apply(RareCommandDocumentCreatorDetection().state_update(_ssm_event(prior), settings))


def _earlier_copy(event: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    record = copy.deepcopy(next(r for r in records_in(event) if isinstance(r, dict)))
    moment = _ssm_event(record).record.event_time - delta
    record["eventTime"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    record["eventID"] = f"given-{record['eventID']}"
    record.pop("errorCode", None)
    return record


def _ssm_event(record: dict[str, Any]) -> SsmEvent:
    parsed = to_event(record, Settings().principal_keying)
    assert isinstance(parsed, SsmEvent), parsed
    return parsed
