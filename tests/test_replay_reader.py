"""A parallel replay's reader processes import only what reading needs (replay/reader.py)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from ssm_detect.replay.reader import read_part
from ssm_detect.replay.sources import FilteredRecords

HEAVY = ("pydantic", "detections", "boto3", "botocore", "aws_lambda_powertools", "rich")


def test_the_reader_module_imports_nothing_of_the_detector() -> None:
    probe = (
        f"import sys, ssm_detect.replay.reader\nprint([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", probe], capture_output=True, check=True, text=True
    )
    assert done.stdout.strip() == "[]"


def test_a_log_object_comes_back_as_its_count_and_the_records_to_parse(tmp_path: Path) -> None:
    records = [
        {"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances"},
        {"eventSource": "ssm.amazonaws.com", "eventName": "SendCommand", "eventID": "a"},
        {"eventSource": "ssm.amazonaws.com", "eventName": "ListCommands"},
    ]
    path = tmp_path / "o.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    part = read_part(path, "role", frozenset({"SendCommand"}), None)
    assert isinstance(part, FilteredRecords)
    assert part.total == 3
    assert [(i, json.loads(raw)) for i, raw in part.needed] == [(1, records[1])]


def test_anything_else_is_read_whole_by_the_general_reader(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    record = {
        "eventSource": "ssm.amazonaws.com",
        "eventName": "SendCommand",
        "eventID": "b",
        "eventTime": "2025-03-03T10:00:00Z",
    }
    path.write_text(json.dumps(record) + "\nnot json\n")
    part = read_part(path, "role", None, None)
    assert not isinstance(part, FilteredRecords)
    assert [held.event_id for held in part.held] == ["b"]
    assert part.summary.bad_events == 1
