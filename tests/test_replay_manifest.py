"""`ssm-detect replay` on the fixtures fires exactly what events/manifest.toml says.

tests/test_manifest.py checks each case through the Lambda handler. Here each case goes through
the command line instead: its given events and its file in one folder, replayed; its
`given_state` written first by `ssm-detect seed-history` from an earlier copy of the event
(which is what seeding is for). The detections that fire on the case's own event must be
exactly the manifest's `fires`, with the listed severities.
"""

from __future__ import annotations

import copy
import json
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from ssm_detect.cli import main
from ssm_detect.findings import Finding
from ssm_detect.ingest import records_in
from ssm_detect.models.event_time import parse_event_time
from ssm_detect.pipeline import Outcome, Pipeline
from ssm_detect.ssm_event import SsmEvent
from tests.builders import iso
from tests.conftest import EVENTS, load_event

CASES: list[dict[str, Any]] = tomllib.loads((EVENTS / "manifest.toml").read_text())["cases"]


def record_of(name: str) -> dict[str, Any]:
    """The CloudTrail record in an event file ({} for an event that carries none)."""
    return next((r for r in records_in(load_event(name)) if isinstance(r, dict)), {})


def event_id(name: str) -> str:
    return str(record_of(name).get("eventID", ""))


def event_time(name: str) -> datetime:
    return parse_event_time(record_of(name)["eventTime"])


def arrives_out_of_order(case: dict[str, Any]) -> bool:
    """A case about arrival order: a given event is *later* in event time than the case's own.
    Replay processes in event-time order, so there the verdict moves to the later event."""
    given = case.get("given_events", [])
    return bool(given) and any(event_time(g) > event_time(case["file"]) for g in given)


IN_ORDER = [c for c in CASES if not c["skipped"] and not arrives_out_of_order(c)]
OUT_OF_ORDER = [c for c in CASES if not c["skipped"] and arrives_out_of_order(c)]
SKIPPED = [c for c in CASES if c["skipped"]]


@contextmanager
def firings() -> Iterator[dict[str, list[Finding]]]:
    """Every firing of the pipeline during the block, by the event it was processed for."""
    found: dict[str, list[Finding]] = {}
    original = Pipeline.process

    def spy(self: Pipeline, event: SsmEvent) -> Outcome:
        outcome = original(self, event)
        found.setdefault(event.event_id, []).extend(outcome.findings)
        return outcome

    with patch.object(Pipeline, "process", spy):
        yield found


def history_for(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The given_state as CloudTrail records: the case's event, moved back in time."""
    given = case.get("given_state") or {}
    history = []
    if "fanout" in given:
        prior = earlier_copy(case["file"], timedelta(minutes=given["fanout"]["minutes_before"]))
        prior["requestParameters"] = {"instanceIds": given["fanout"]["instance_ids"]}
        prior["responseElements"] = None
        history.append(prior)
    if "creator" in given:
        history.append(earlier_copy(case["file"], timedelta(days=given["creator"]["days_before"])))
    return history


def earlier_copy(name: str, delta: timedelta) -> dict[str, Any]:
    record = copy.deepcopy(record_of(name))
    record["eventTime"] = iso(event_time(name) - delta)
    record["eventID"] = f"given-{record['eventID']}-{int(delta.total_seconds())}"
    record.pop("errorCode", None)
    return record


def replay_case(case: dict[str, Any], root: Path) -> dict[str, list[Finding]]:
    """Seed the case's given state, then replay its given events and its file together."""
    state = root / "state.sqlite"
    history = history_for(case)
    if history:
        (root / "history.json").write_text(json.dumps({"Records": history}))
        assert main(["seed-history", "--state", str(state), str(root / "history.json")]) == 0
    folder = root / "replayed"
    folder.mkdir()
    for name in (*case.get("given_events", []), case["file"]):
        shutil.copy(EVENTS / name, folder / name)
    with firings() as found:
        assert main(["replay", "--output", "jsonl", "--state", str(state), str(folder)]) == 0
    return found


def detections(findings: list[Finding]) -> set[str]:
    return {f.detection_id for f in findings}


@pytest.mark.parametrize("case", IN_ORDER, ids=[c["file"] for c in IN_ORDER])
def test_replay_fires_exactly_the_manifest_entry(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings the case needs: replay reads them from the environment, as the Lambda does.
    for name, value in (case.get("env") or {}).items():
        monkeypatch.setenv(name, value)
    found = replay_case(case, tmp_path)
    own = found.get(event_id(case["file"]), [])
    assert detections(own) == set(case["fires"]), case["title"]
    for detection_id, severity in (case.get("severity") or {}).items():
        [finding] = [f for f in own if f.detection_id == detection_id]
        assert finding.severity == severity, (detection_id, finding.severity_reasons)


@pytest.mark.parametrize("case", OUT_OF_ORDER, ids=[c["file"] for c in OUT_OF_ORDER])
def test_replay_of_an_arrival_order_case_fires_the_same_detections_in_time_order(
    case: dict[str, Any], tmp_path: Path
) -> None:
    """The Lambda met these events out of order; replay meets them in event-time order. The
    detections fired over the case's events are the same; which event decides may move."""
    found = replay_case(case, tmp_path)
    names = [*case.get("given_events", []), case["file"]]
    expected = set(case["fires"])
    for given in case.get("given_events", []):
        expected |= set(next(c for c in CASES if c["file"] == given)["fires"])
    fired = {d for name in names for d in detections(found.get(event_id(name), []))}
    assert fired == expected, case["title"]


@pytest.mark.parametrize("case", SKIPPED, ids=[c["file"] for c in SKIPPED])
def test_replay_reports_the_manifest_malformed_files(
    case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = replay_case(case, tmp_path)
    summary = json.loads(capsys.readouterr().err.splitlines()[0])
    assert summary["bad_events"] == 1
    assert not any(found.values())


def met_earlier_in_a_joint_run(case: dict[str, Any]) -> bool:
    """Another case names this file as a given event but happens before it in event time: the
    manifest judges this file before that event arrives, one time-ordered run after it."""
    if not record_of(case["file"]).get("eventTime"):
        return False
    own = event_time(case["file"])
    return any(
        case["file"] in other.get("given_events", []) and event_time(other["file"]) < own
        for other in CASES
        if record_of(other["file"]).get("eventTime")
    )


def test_replay_of_the_whole_events_folder_agrees_with_the_manifest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make run`: every file in one run, one state. Cases that need state the folder does not
    contain (`given_state`) or that are about arrival order cannot hold there; every other case
    fires exactly its entry, although all the files share the state."""
    with firings() as found:
        assert main(["replay", "--output", "jsonl", str(EVENTS)]) == 0
    # Cases that need their own settings (`env`) cannot hold in a run with the defaults.
    standalone = [
        c
        for c in IN_ORDER
        if not c.get("given_state") and not c.get("env") and not met_earlier_in_a_joint_run(c)
    ]
    assert len(standalone) > len(CASES) * 3 // 4
    wrong = {
        c["file"]: sorted(detections(found.get(event_id(c["file"]), [])))
        for c in standalone
        if detections(found.get(event_id(c["file"]), [])) != set(c["fires"])
    }
    assert wrong == {}
    summary = json.loads(capsys.readouterr().err.splitlines()[0])
    assert summary["bad_events"] == len(SKIPPED)
