"""The replay's prefilter never drops a record the full parse would judge (prefilter.py).

Records are generated with every shape the engine distinguishes (other services, SSM calls of
every name, missing or odd `eventSource` / `eventName`, containers), written as JSON the way
nobody writes it by hand: any character of any string (keys included) escaped as `\\uXXXX`,
whitespace of every legal kind between tokens, duplicate keys. The reference is the engine
itself on the standard library's parse of the same text.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detections import all_detections
from ssm_detect.cli import REPLAYED_EVENT_NAMES
from ssm_detect.event_names import DETECTED_EVENT_NAMES
from ssm_detect.models.event_time import parse_event_time
from ssm_detect.principal import PrincipalKeying
from ssm_detect.replay.engine import Intake, _reader_context, read_inputs
from ssm_detect.replay.prefilter import needs_parsing, split_records
from ssm_detect.replay.sources import RecordList
from ssm_detect.settings import Settings

SSM = "ssm.amazonaws.com"
NAMES = frozenset({"SendCommand", "CreateDocument"})

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
sources = st.one_of(
    st.sampled_from([SSM, "ec2.amazonaws.com", "ssm.amazonaws.co", "SSM"]), json_values
)
names = st.one_of(
    st.sampled_from(["SendCommand", "CreateDocument", "GetParameters", "sendcommand", ""]),
    json_values,
)
ABSENT = object()


@st.composite
def records(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 20)) == 0:
        return draw(json_values)  # not even an object
    record: dict[str, Any] = {}
    for key, values in (("eventSource", sources), ("eventName", names)):
        if draw(st.integers(0, 5)):
            record[key] = draw(values)
    record["eventID"] = draw(st.sampled_from(["e1", "e2", ""]))
    record["eventTime"] = draw(st.sampled_from(["2025-03-03T10:00:00Z", "not a time"]))
    record["userIdentity"] = {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/a"}
    record["recipientAccountId"] = "111122223333"
    if draw(st.integers(0, 10)) == 0:
        record[draw(st.sampled_from(["Records", "detail", "detail-type"]))] = draw(json_values)
    for key, value in draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)).items():
        record.setdefault(key, value)
    return record


WHITESPACE = st.text(alphabet=" \t\r\n", max_size=2)


def _string(draw: st.DrawFn, text: str) -> str:
    escaped = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    parts = []
    for char, escape in zip(text, escaped, strict=True):
        if escape or char in '"\\' or ord(char) < 0x20:
            units = char.encode("utf-16-be")
            parts += [f"\\u{units[i : i + 2].hex()}" for i in range(0, len(units), 2)]
        else:
            parts.append(char)
    return '"' + "".join(parts) + '"'


def write(draw: st.DrawFn, value: object) -> str:
    """`value` as JSON, with random escapes and whitespace (and a duplicate key now and then:
    an earlier throwaway value, which the last one overrides, as in json.loads)."""
    gap = draw(WHITESPACE)
    if isinstance(value, dict):
        members = []
        for key, item in value.items():
            if draw(st.integers(0, 8)) == 0:
                members.append(f"{_string(draw, key)}{gap}:{write(draw, 'shadowed')}")
            members.append(f"{_string(draw, key)}{draw(WHITESPACE)}:{gap}{write(draw, item)}")
        return "{" + gap + f",{gap}".join(members) + draw(WHITESPACE) + "}"
    if isinstance(value, list):
        return "[" + gap + f"{gap},".join(write(draw, item) for item in value) + "]"
    if isinstance(value, str):
        return _string(draw, value)
    return json.dumps(value)


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, list[object]]:
    found = draw(st.lists(records(), max_size=6))
    text = write(draw, {"Records": found})
    return text.encode(), json.loads(text)["Records"]


def engine_verdict(record: object) -> tuple[bool, bool]:
    """(held for ordering, reported as bad) by the engine on the full parse of `record`."""
    intake = Intake(PrincipalKeying.SESSION)
    intake.add([RecordList("f", "Records", [record])])
    return intake.held > 0, intake.summary.bad_events > 0


def _read_by_a_detection(record: object) -> bool:
    name = record.get("eventName") if isinstance(record, dict) else None
    return isinstance(name, str) and name in NAMES


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_no_record_the_engine_keeps_or_reports_is_dropped(
    document: tuple[bytes, list[object]],
) -> None:
    text, parsed = document
    split = split_records(text, needs_parsing())
    if split is None:
        return  # the general reader reads the file: nothing is dropped
    assert split.total == len(parsed)
    kept = dict(split.needed)
    for index, record in enumerate(parsed):
        held, bad = engine_verdict(record)
        if held or bad:
            assert index in kept, (record, text)
        if index in kept:
            assert json.loads(kept[index]) == record  # the raw bytes are that record's


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_with_event_names_no_record_a_detection_reads_is_dropped(
    document: tuple[bytes, list[object]],
) -> None:
    text, parsed = document
    split = split_records(text, needs_parsing(NAMES))
    if split is None:
        return
    kept = dict(split.needed)
    for index, record in enumerate(parsed):
        held, _ = engine_verdict(record)
        if held and _read_by_a_detection(record):
            assert index in kept, (record, text)


def test_the_prefilter_drops_what_it_may() -> None:
    """Not vacuous: other services and unread SSM calls are dropped, escaped or not."""
    text = (
        b'{"Records":[{"eventSource":"ec2.amazonaws.com","eventName":"SendCommand"},'
        b'{"eventSource":"ssm.amazonaws.com","eventName":"GetParameters"},'
        b'{"eventSource" : "\\u0073sm.amazonaws.com", "eventName":"Send\\u0043ommand"},'
        b'{"eventSource":"ssm.amazonaws.com","eventName":"SendCommand","eventName":"X"},'
        b'{"eventName":"GetParameters"}]}'
    )
    assert [i for i, _ in split_records(text, needs_parsing()).needed] == [1, 2, 3, 4]
    assert [i for i, _ in split_records(text, needs_parsing(NAMES)).needed] == [2, 4]


def _object(tmp_path: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    return path


def _event_time(record: object) -> datetime | None:
    try:
        return parse_event_time(record["eventTime"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None  # the hostile event files: their readers report them


@pytest.fixture(params=["forked", "from a fork server"])
def reader_start(request: pytest.FixtureRequest) -> Iterator[str]:
    """Readers are forked from a single-threaded process, and come from a fork server while
    another thread runs (engine._reader_context): both must read the same."""
    if request.param == "forked":
        if threading.active_count() > 1:  # a thread another test left (DynamoDB Local's reader)
            pytest.skip("this process has other threads: readers come from the fork server")
        yield "fork"
        return
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        yield "forkserver"
    finally:
        release.set()
        other.join()


def test_parallel_readers_give_the_same_intake_as_one(tmp_path: Path, reader_start: str) -> None:
    assert _reader_context().get_start_method() == reader_start
    events = Path(__file__).resolve().parent.parent / "events"
    records = []
    for file in sorted(events.glob("*.json")):
        loaded = json.loads(file.read_text())
        records.append(loaded.get("detail", loaded))
    for n in range(4):
        _object(tmp_path, f"{n}.json.gz", [*records[n::4], {"eventSource": "ec2.amazonaws.com"}])
    (tmp_path / "broken.json.gz").write_bytes(gzip.compress(b'{"Records": [')[:-4])
    # Not S3 log objects: a reader hands these back read whole by the general reader.
    (tmp_path / "lines.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[::3]))
    (tmp_path / "array.json").write_text(json.dumps(records[1::5]))
    times = sorted(_event_time(r) for r in records if _event_time(r) is not None)
    window = (times[len(times) // 3], times[-1])
    for names, span in ((None, None), (NAMES, window)):
        outcomes = []
        for jobs in (1, 3):
            intake, files = read_inputs(
                [tmp_path], PrincipalKeying.SESSION, jobs=jobs, event_names=names, window=span
            )
            order = [(e.event_id, e.record.event_time) for e in intake.events()]
            outcomes.append((files, intake.summary.as_dict(), intake.problems.lines, order))
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][0] == 7
        assert outcomes[0][1]["ignored"] >= 4
        assert len(outcomes[0][3]) > (10 if names is None else 3)
        assert any("broken.json.gz" in line for line in outcomes[0][2])


# --- The names the CLI passes (cli.REPLAYED_EVENT_NAMES), against the real detections ---------

EVENTS = Path(__file__).resolve().parent.parent / "events"
EVENT_RECORDS = tuple(
    json.loads(path.read_text())["detail"] for path in sorted(EVENTS.glob("*.json"))
)
# The property below escapes and spaces every character: the few hostile files of hundreds of
# kilobytes would make each example take seconds; the deterministic test reads all of them.
SMALL_EVENT_RECORDS = tuple(r for r in EVENT_RECORDS if len(json.dumps(r)) < 4096)
# Real SSM calls no detection reads (agents, consoles, clean-up), beside every name one does.
UNREAD_SSM_NAMES = (
    "DescribeInstanceInformation",
    "GetCommandInvocation",
    "ListCommands",
    "ResumeSession",
    "TerminateSession",
    "DeleteDocument",
    "GetDocument",
    "PutParameter",
    "DeleteAssociation",
    "StartAssociationsOnce",
    "GetParameterHistory",
    "UpdateInstanceInformation",
)
DETECTIONS = all_detections()
# Service principals feed the stateful detections only when this is on: judge with both.
JUDGE_SETTINGS = (Settings(), Settings(include_service_principals=True))


def judged(record: object) -> bool:
    """Whether the full parse hands the record to a detection that applies to it."""
    intake = Intake(PrincipalKeying.ROLE)
    intake.add([RecordList("f", "Records", [record])])
    return any(
        detection.applies_to(event, settings)
        for event in intake.events()
        for detection in DETECTIONS
        for settings in JUDGE_SETTINGS
    )


@st.composite
def renamed_event_records(draw: st.DrawFn) -> object:
    """A real record of events/, now and then under another call's name (or an odd one)."""
    record = draw(st.sampled_from(SMALL_EVENT_RECORDS))
    if not isinstance(record, dict):
        return record
    record = dict(record)
    choice = draw(st.integers(0, 3))
    if choice == 1:
        record["eventName"] = draw(st.sampled_from(DETECTED_EVENT_NAMES))
    elif choice == 2:
        record["eventName"] = draw(st.sampled_from(UNREAD_SSM_NAMES))
    elif choice == 3:
        record["eventName"] = draw(names)
    return record


@st.composite
def event_documents(draw: st.DrawFn) -> tuple[bytes, list[object]]:
    found = draw(st.lists(st.one_of(renamed_event_records(), records()), max_size=5))
    text = write(draw, {"Records": found})
    return text.encode(), json.loads(text)["Records"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_documents())
def test_with_the_cli_names_no_record_a_detection_judges_is_dropped(
    document: tuple[bytes, list[object]],
) -> None:
    text, parsed = document
    split = split_records(text, needs_parsing(REPLAYED_EVENT_NAMES))
    if split is None:
        return
    kept = dict(split.needed)
    for index, record in enumerate(parsed):
        if judged(record):
            assert index in kept, (record, text)
        if index in kept:
            assert json.loads(kept[index]) == record


def _kept_alone(record: object) -> bool | None:
    """Whether the prefilter keeps `record` as the only record of an S3 object (None: the
    object goes to the general reader, which parses everything)."""
    split = split_records(json.dumps({"Records": [record]}).encode(), needs_parsing(NAMES_READ))
    return None if split is None else bool(split.needed)


NAMES_READ = REPLAYED_EVENT_NAMES


def test_every_event_file_a_detection_judges_is_kept_by_the_cli_names() -> None:
    """Not vacuous: most event files are judged, and every one of them passes the prefilter;
    the same records under a call no detection reads are dropped unparsed."""
    judged_files = [record for record in EVENT_RECORDS if judged(record)]
    assert len(judged_files) > len(EVENT_RECORDS) // 2
    assert all(_kept_alone(record) is not False for record in judged_files)
    dropped = 0
    for record in EVENT_RECORDS:
        if not isinstance(record, dict):
            continue  # a hostile file's detail: judged by nothing, under any name
        unread = dict(record, eventName="DescribeInstanceInformation")
        assert not judged(unread)
        if record.get("eventSource") == SSM and _kept_alone(unread) is False:
            dropped += 1
    assert dropped > len(EVENT_RECORDS) // 2
