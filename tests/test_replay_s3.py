"""`ssm-detect replay s3://BUCKET/PREFIX --start --end`: CloudTrail's key layout, for a range.

A trail bucket is laid out in moto's S3 as CloudTrail writes it (an organisation trail under a
custom prefix: two accounts, two regions, digest files, days around the range), and the replay
from S3 must give the findings a replay of the same objects from disk gives.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ssm_detect.cli import main
from ssm_detect.replay.prefilter import needs_parsing
from ssm_detect.replay.s3 import (
    Checkpoint,
    FetchCounts,
    S3Location,
    day_folders,
    list_objects,
    read_objects,
    region_folders,
)
from ssm_detect.replay.sources import FilteredRecords
from tests.conftest import EVENTS, REGION

BUCKET = "org-trail"
BASE = "logs/AWSLogs/o-abcdefghij"
START = datetime(2025, 3, 3, tzinfo=UTC)
END = datetime(2025, 3, 5, tzinfo=UTC)


def ssm_records() -> list[dict[str, Any]]:
    found = []
    for path in sorted(EVENTS.glob("*.json")):
        loaded = json.loads(path.read_text())
        detail = loaded.get("detail", loaded)
        if isinstance(detail, dict) and detail.get("eventSource") == "ssm.amazonaws.com":
            found.append(detail)
    return found


def _retimed(record: dict[str, Any], day: int, n: int) -> dict[str, Any]:
    return record | {"eventTime": f"2025-03-{day:02d}T{n % 24:02d}:{n % 60:02d}:00Z"}


def trail(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Objects by key, as CloudTrail lays them out; also written under tmp_path/disk/."""
    records = ssm_records()
    objects: dict[str, list[dict[str, Any]]] = {}
    for n, record in enumerate(records):
        account = ("111122223333", "444455556666")[n % 2]
        region = ("us-east-1", "eu-west-1")[n // 2 % 2]
        day = (2, 3, 4, 5, 6)[n % 5]  # the 2nd and 6th are outside the range's folders
        key = (
            f"{BASE}/{account}/CloudTrail/{region}/2025/03/{day:02d}/"
            f"{account}_CloudTrail_{region}_202503{day:02d}T0000Z_{n:04d}.json.gz"
        )
        other = {
            "eventSource": "ec2.amazonaws.com",
            "eventName": "DescribeInstances",
            "eventID": f"x{n}",
            "eventTime": "2025-03-03T00:00:00Z",
        }
        objects[key] = [_retimed(record, day, n), other]
    return objects


def put(objects: dict[str, list[dict[str, Any]]]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    for key, records in objects.items():
        s3.put_object(
            Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps({"Records": records}).encode())
        )
    digest = f"{BASE}/111122223333/CloudTrail-Digest/us-east-1/2025/03/03/d.json.gz"
    s3.put_object(Bucket=BUCKET, Key=digest, Body=gzip.compress(b'{"digestStartTime": "x"}'))


def in_range_keys(objects: dict[str, list[dict[str, Any]]]) -> list[str]:
    return sorted(k for k in objects if any(f"/2025/03/{d}/" in k for d in ("03", "04", "05")))


def test_day_folders_cover_the_range_and_late_delivery() -> None:
    days = day_folders(
        datetime(2025, 3, 3, 10, tzinfo=UTC), datetime(2025, 3, 4, 23, 30, tzinfo=UTC)
    )
    assert [d.isoformat() for d in days] == ["2025-03-03", "2025-03-04", "2025-03-05"]


@pytest.mark.parametrize("prefix", ["", "logs", "logs/AWSLogs/", f"{BASE}/111122223333/"])
def test_the_walk_finds_region_folders_from_any_depth(prefix: str, tmp_path: Path) -> None:
    objects = trail(tmp_path)
    with mock_aws():
        put(objects)
        client = boto3.client("s3", region_name=REGION)
        found = sorted(region_folders(client, S3Location(BUCKET, prefix)))
    accounts = ("111122223333",) if "1111" in prefix else ("111122223333", "444455556666")
    assert found == sorted(
        f"{BASE}/{a}/CloudTrail/{r}/" for a in accounts for r in ("eu-west-1", "us-east-1")
    )


def test_only_the_ranges_objects_are_listed(tmp_path: Path) -> None:
    objects = trail(tmp_path)
    with mock_aws():
        put(objects)
        client = boto3.client("s3", region_name=REGION)
        listed = [o.key for o in list_objects(client, S3Location(BUCKET, "logs/"), START, END)]
    assert sorted(listed) == in_range_keys(objects)


def test_replay_from_s3_equals_replay_of_the_same_objects_from_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    objects = trail(tmp_path)
    disk = tmp_path / "disk"
    for key in in_range_keys(objects):
        path = disk / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(json.dumps({"Records": objects[key]}).encode()))
    window = ["--start", START.isoformat(), "--end", END.isoformat()]
    assert main(["replay", "--output", "jsonl", *window, str(disk)]) == 0
    from_disk = capsys.readouterr()
    with mock_aws():
        put(objects)
        args = ["replay", "--output", "jsonl", *window, f"s3://{BUCKET}/logs/", "--region", REGION]
        assert main(args) == 0
    from_s3 = capsys.readouterr()
    assert from_s3.out == from_disk.out
    assert from_s3.out.strip()
    assert json.loads(from_s3.err.splitlines()[0]) == json.loads(from_disk.err.splitlines()[0])


def test_a_stopped_read_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    objects = trail(tmp_path)
    location = S3Location(BUCKET, "logs/")
    checkpoint_file = tmp_path / "checkpoint.jsonl"
    with mock_aws():
        put(objects)
        client = boto3.client("s3", region_name=REGION)
        listed = list(list_objects(client, location, START, END))
        fetched: list[str] = []

        class Flaky:
            """Fails the fourth object of the first run, like a lost connection."""

            def get_object(self, **kwargs: Any) -> Any:
                fetched.append(kwargs["Key"])
                if failing and kwargs["Key"] == listed[3].key:
                    raise ConnectionError("connection reset")
                return client.get_object(**kwargs)

        failing = True
        checkpoint = Checkpoint(checkpoint_file)
        reading = read_objects(
            Flaky(), location, listed, needs_parsing(), fetchers=1, checkpoint=checkpoint
        )  # type: ignore[arg-type]
        with pytest.raises(ConnectionError):
            list(reading)
        checkpoint.close()
        assert len(checkpoint_file.read_text().splitlines()) == 3
        failing, fetched[:] = False, []
        counts = FetchCounts()
        checkpoint = Checkpoint(checkpoint_file)
        second = list(
            read_objects(
                Flaky(),
                location,
                listed,
                needs_parsing(),
                fetchers=4,
                checkpoint=checkpoint,
                counts=counts,
            )
        )  # type: ignore[arg-type]
        checkpoint.close()
        whole = list(read_objects(client, location, listed, needs_parsing()))
    assert sorted(fetched) == sorted(o.key for o in listed[3:])  # the first three: not again
    assert counts.from_checkpoint == 3
    assert counts.objects == len(listed)
    assert second == whole
    assert all(isinstance(i, FilteredRecords) for i in whole)


def test_seed_history_from_s3_writes_what_seeding_the_same_objects_from_disk_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    objects = trail(tmp_path)
    disk = tmp_path / "disk"
    for key in in_range_keys(objects):
        path = disk / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(json.dumps({"Records": objects[key]}).encode()))
    window = ["--start", START.isoformat(), "--end", END.isoformat()]
    from_disk = tmp_path / "disk.sqlite"
    assert main(["seed-history", "--state", str(from_disk), *window, str(disk)]) == 0
    disk_report = capsys.readouterr().out
    from_s3 = tmp_path / "s3.sqlite"
    with mock_aws():
        put(objects)
        args = ["seed-history", "--state", str(from_s3), *window, f"s3://{BUCKET}/logs/"]
        assert main([*args, "--region", REGION]) == 0
    s3_report = capsys.readouterr().out
    assert "applied" in disk_report
    same = s3_report.replace(str(from_s3), "STATE").splitlines()[1:]
    assert same == disk_report.replace(str(from_disk), "STATE").splitlines()[1:]
    assert f"{len(in_range_keys(objects))} S3 object(s)" in s3_report
