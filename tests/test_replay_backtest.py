"""A backtest over a folder shaped like real exports: exact counts, findings and problems.

The folder mixes what people actually point a backtest at: CloudTrail's gzip S3 objects (one
newest-first, one overlapping another), a JSON array and JSON lines from a SIEM export, a
pretty-printed document, EventBridge envelopes, and damaged files.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import tomllib
from collections import Counter
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from bench.corpus import CorpusSpec, ensure_corpus, lambda_events_path
from ssm_detect.cli import REPLAYED_EVENT_NAMES, main
from ssm_detect.findings import Finding
from ssm_detect.ingest import records_in
from ssm_detect.ledger.base import RETENTION
from ssm_detect.ledger.sqlite import SqliteLedger
from ssm_detect.pipeline import Outcome, Pipeline
from ssm_detect.replay.engine import replay
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.wiring import local_runtime
from tests.builders import T0, create_document, envelope, load_payload, load_record
from tests.builders import send_command as send_command_record
from tests.conftest import EVENTS

S3 = "AWSLogs/111122223333/CloudTrail/us-west-2/2025/03/10"


def other_service(n: int) -> dict[str, Any]:
    record = load_record("panther_unrelated_describe_instances.json")
    record["eventID"] = f"ec2-{n}"
    return record


def send_command(event_id: str, instance: str, minutes: int, **kwargs: Any) -> dict[str, Any]:
    return send_command_record(
        [instance], event_id=event_id, at=T0 + timedelta(minutes=minutes), **kwargs
    )


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)


def s3_object(*records: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps({"Records": list(records)}).encode())


def build_mixed_folder(root: Path) -> None:
    sc1 = send_command("sc-1", "i-0aaaaaaaaaaaaaaa1", 0)
    sc2 = send_command("sc-2", "i-0aaaaaaaaaaaaaaa2", 10)
    sc3 = send_command("sc-3", "i-0aaaaaaaaaaaaaaa3", 20)
    cd1 = create_document(event_id="cd-1", at=T0 + timedelta(minutes=30))
    # Same creator 90 minutes later: seen before, so not rare.
    cd2 = create_document(event_id="cd-2", at=T0 + timedelta(minutes=120), name="Ops-Doc-2")
    by_user = send_command("sc-4", "i-0aaaaaaaaaaaaaaa1", 40, template="send_command_iam_user.json")
    no_time = send_command("nt-1", "i-0aaaaaaaaaaaaaaa9", 50)
    del no_time["eventTime"]

    write(
        root / S3 / "111122223333_CloudTrail_us-west-2_20250310T1000Z_a.json.gz",
        s3_object(other_service(1), sc1, other_service(2)),
    )
    # Newest first, as some exports write them.
    write(
        root / S3 / "111122223333_CloudTrail_us-west-2_20250310T1010Z_b.json.gz",
        s3_object(sc3, sc2),
    )
    # Overlaps the previous object: sc-2 again.
    write(
        root / S3 / "111122223333_CloudTrail_us-west-2_20250310T1030Z_c.json.gz",
        s3_object(sc2, cd1),
    )
    write(root / "export/array.json", json.dumps([other_service(3), sc1]))
    write(
        root / "export/lines.jsonl",
        f"{json.dumps(other_service(4))}\n{{not json\n{json.dumps(no_time)}\n\n",
    )
    write(
        root / "export/lines.jsonl.gz",
        gzip.compress(b'{"eventID": "\xff"}\n' + json.dumps(other_service(5)).encode()),
    )
    write(root / "export/pretty.json", json.dumps({"Records": [cd2]}, indent=2))
    write(root / "eventbridge/send_command.json", json.dumps(envelope(by_user)))
    write(
        root / "eventbridge/status.json",
        json.dumps(load_payload("ssm_command_status_change_notification.json")),
    )
    write(root / "broken/truncated.json.gz", s3_object(sc1)[:-10])
    write(root / "broken/not-cloudtrail.json", json.dumps({"hello": "world"}))
    write(root / "README.md", "not read: not a CloudTrail file name")


EXPECTED_SUMMARY = {
    "files": 11,
    "events_seen": 16,
    "ignored": 6,  # five other-service records, one non-CloudTrail EventBridge event
    "ssm_events": 6,  # sc-1..4, cd-1, cd-2
    "duplicates": 2,  # sc-1 and sc-2, read twice each
    "bad_events": 5,
    "findings": {
        "AWS.SSM.SendCommand": 4,
        "AWS.SSM.DistributedCommand": 1,
        "AWS.SSM.RareCommandDocumentCreator": 1,
    },
    "notified": 4,
    "suppressed": 2,  # sc-2 and sc-3 join sc-1's open SendCommand finding
    "allowlisted": {},
}
EXPECTED_PROBLEMS = [
    "skipped: {root}/broken/not-cloudtrail.json: not a CloudTrail record: no eventSource",
    "skipped: {root}/broken/truncated.json.gz: unreadable: truncated gzip (the file ends before "
    "the compressed stream does)",
    "skipped: {root}/export/lines.jsonl:2: not JSON: Expecting property name enclosed in double "
    "quotes at column 2",
    "skipped: {root}/export/lines.jsonl:3: event nt-1: no eventTime",
    "skipped: {root}/export/lines.jsonl.gz:1: not UTF-8: byte 13 cannot be decoded",
]


def test_backtest_of_mixed_real_world_files_counts_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_mixed_folder(tmp_path)

    assert main(["replay", "--output", "jsonl", str(tmp_path)]) == 0

    out, err = capsys.readouterr()
    summary_line, *problems = err.splitlines()
    summary = json.loads(summary_line)
    # the files are from 2025: older than what the deployed ledger remembers (ledger/base.py)
    assert "redelivery bound" in summary.pop("note")
    assert summary == EXPECTED_SUMMARY
    assert problems == [p.format(root=tmp_path) for p in EXPECTED_PROBLEMS]
    findings = [json.loads(line) for line in out.splitlines()]
    assert sorted((f["detection_id"], f["principal"]["key"], f["count"]) for f in findings) == [
        ("AWS.SSM.DistributedCommand", "arn:aws:iam::111122223333:role/PlatformOps", 1),
        ("AWS.SSM.RareCommandDocumentCreator", "arn:aws:iam::111122223333:role/DevOpsEngineer", 1),
        ("AWS.SSM.SendCommand", "arn:aws:iam::111122223333:role/PlatformOps", 3),
        ("AWS.SSM.SendCommand", "arn:aws:iam::111122223333:user/ci-runner", 1),
    ]
    fanout = next(f for f in findings if f["detection_id"] == "AWS.SSM.DistributedCommand")
    assert fanout["event_ids"] == ["sc-1", "sc-2", "sc-3"]
    assert fanout["last_seen"] == "2025-03-10T10:20:00Z"


def test_backtest_gives_the_same_result_when_every_event_spills_to_disk(tmp_path: Path) -> None:
    """Memory bounding changes where events wait, never the verdicts."""
    build_mixed_folder(tmp_path)

    def run(max_held_bytes: int) -> tuple[list[str], dict[str, object], int]:
        wired = local_runtime(Settings())
        result = replay([tmp_path], wired.pipeline, wired.dispatcher, max_held_bytes=max_held_bytes)
        # recorded_at / updated_at are the ledger's wall clock (Security Hub's CreatedAt and
        # UpdatedAt), not verdicts
        wall = {"recorded_at", "updated_at"}
        findings = sorted(f.model_dump_json(exclude=wall) for f in result.findings)
        return findings, result.summary.as_dict(), result.spilled_runs

    in_memory, spilled = run(64 * 2**20), run(1)
    assert spilled[:2] == in_memory[:2]
    assert (in_memory[2], spilled[2]) == (0, 8)


def test_backtest_of_the_events_folder_reads_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    """`make run`: every fixture read; the malformed ones reported, the rest detected."""
    assert main(["replay", "--output", "jsonl", str(EVENTS)]) == 0
    summary = json.loads(capsys.readouterr().err.splitlines()[0])
    files = len(list(EVENTS.glob("*.json")))
    assert summary["files"] == files
    assert summary["events_seen"] == files
    # the manifest's skipped cases; other malformed_* files are judged on their valid fields
    manifest = tomllib.loads((EVENTS / "manifest.toml").read_text())
    assert summary["bad_events"] == sum(1 for case in manifest["cases"] if case["skipped"])
    ids = Counter(
        record["eventID"]
        for path in EVENTS.glob("*.json")
        for record in records_in(json.loads(path.read_text()))
        if isinstance(record, dict) and record.get("eventSource") == "ssm.amazonaws.com"
    )
    assert summary["duplicates"] == sum(ids.values()) - len(ids)  # redelivery fixtures


def test_backtest_of_a_generated_corpus_reads_what_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The project's corpus (bench/corpus.py) through replay: every record and object counted,
    every SSM record of a call a detection reads processed (the others are ignored unparsed,
    like other services'), every successful SendCommand fired on."""
    spec = CorpusSpec(5_000, days=2, ssm_share=0.2)
    folder, stats = ensure_corpus(tmp_path, spec, workers=1)
    delivered = [
        json.loads(line) for line in lambda_events_path(tmp_path, spec).read_text().splitlines()
    ]
    succeeded = [r for r in delivered if r["eventName"] == "SendCommand" and "errorCode" not in r]
    assert main(["replay", "--output", "jsonl", str(folder)]) == 0
    summary = json.loads(capsys.readouterr().err.splitlines()[0])
    assert summary["files"] == stats["objects"] > 1
    assert summary["events_seen"] == stats["records"] == 5_000
    read = [
        record
        for path in sorted(folder.rglob("*.json.gz"))
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]
        if record["eventSource"] == "ssm.amazonaws.com"
        and record["eventName"] in REPLAYED_EVENT_NAMES
    ]
    assert len(read) == summary["ssm_events"] < stats["ssm"]  # the corpus has agents' polling
    assert summary["ignored"] == stats["records"] - len(read)
    assert summary["bad_events"] == summary["duplicates"] == 0
    assert len(succeeded) < stats["send_command"]  # the corpus has denied calls too
    assert summary["findings"]["AWS.SSM.SendCommand"] == len(succeeded)


def test_replay_hands_each_finding_over_once_its_window_has_closed(tmp_path: Path) -> None:
    """With `on_final` (the JSON lines output), a finding leaves memory as soon as no later
    event can join it, instead of at the end of the replay."""
    calls = [
        send_command(f"sc-{n}", f"i-0aaaaaaaaaaaaaa{n:02d}", minutes)
        for n, minutes in enumerate((0, 10, 120, 240, 250))
    ]
    (tmp_path / "trail.json").write_text(json.dumps({"Records": calls}))
    wired = local_runtime(Settings())
    processed: list[str] = []
    handed: list[tuple[list[str], int, int]] = []
    original = Pipeline.process

    def counting(self: Pipeline, event: SsmEvent) -> Outcome:
        processed.append(event.event_id)
        return original(self, event)

    def final(finding: Finding) -> None:
        handed.append((list(finding.event_ids), finding.count, len(processed)))

    with patch.object(Pipeline, "process", counting):
        result = replay(
            [tmp_path], wired.pipeline, wired.dispatcher, on_final=final, delivery_batch=1
        )

    assert result.findings == []
    assert handed == [
        (["sc-0", "sc-1"], 2, 3),  # final once sc-2 (2 h later) has been processed
        (["sc-2"], 1, 4),
        (["sc-3", "sc-4"], 2, 5),  # still open at the end
    ]


def test_replay_forgets_ledger_windows_once_its_event_time_is_past_their_retention(
    tmp_path: Path,
) -> None:
    """The replay's ledger keeps about RETENTION's worth of windows, as DynamoDB's TTL does
    live, so a replay of months does not hold every window it ever opened; the findings are
    those of the ledger that forgets nothing."""
    days = (RETENTION + timedelta(days=4)).days
    calls = [
        send_command(f"sc-{n}", f"i-0aaaaaaaaaaaaaa{n:02d}", minutes)
        for n, minutes in enumerate((0, 10, days * 24 * 60, days * 24 * 60 + 10))
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "trail.json").write_text(json.dumps({"Records": calls}))

    def run(state: Path, *, forgets: bool) -> list[tuple[str, ...]]:
        wired = local_runtime(Settings(), state_path=state)
        with patch.object(SqliteLedger, "forget_windows_before", autospec=True) as forget:
            if forgets:
                forget.side_effect = _forget_windows_before
            result = replay([tmp_path / "in"], wired.pipeline, wired.dispatcher, delivery_batch=1)
        with closing(sqlite3.connect(state)) as db:
            windows.append(db.execute("SELECT count(*) FROM ledger_window").fetchone()[0])
        return sorted(f.event_ids for f in result.findings)

    windows: list[int] = []
    kept = run(tmp_path / "keeps.sqlite", forgets=False)
    assert run(tmp_path / "forgets.sqlite", forgets=True) == kept
    assert kept == [("sc-0", "sc-1"), ("sc-2", "sc-3")]
    assert windows == [2, 1]  # the window of sc-0 and sc-1 went, once sc-2 was 20 days on


_forget_windows_before = SqliteLedger.forget_windows_before


def test_replay_reports_a_file_nested_too_deeply_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """json raises RecursionError, not ValueError, past the interpreter's recursion limit."""
    (tmp_path / "deep.json").write_text("[" * 5000 + "]" * 5000)
    (tmp_path / "good.json").write_text(
        json.dumps([send_command("sc-1", "i-0aaaaaaaaaaaaaaa1", 0)])
    )
    assert main(["replay", "--output", "jsonl", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["detection_id"] for line in out.splitlines()] == [
        "AWS.SSM.SendCommand"
    ]
    assert f"skipped: {tmp_path}/deep.json: nested too deeply to parse" in err.splitlines()
