"""`ssm-detect coverage` (issue 15, point 2): watched, silent and unwatched accounts/regions,
from the heartbeats in the state table (DynamoDB Local) and an expected list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ssm_detect.cli import main
from ssm_detect.coverage import coverage, expected_from_file
from ssm_detect.heartbeat import Beat, Source
from ssm_detect.heartbeat_dynamodb import DynamoDbHeartbeats

pytest_plugins = ["tests.dynamodb_local"]

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LIMIT = timedelta(minutes=60)
A, B, C = (
    Source("111122223333", "eu-west-1"),
    Source("444455556666", "eu-west-1"),
    Source("444455556666", "us-east-1"),
)


def test_coverage_sorts_sources_into_watched_silent_unwatched_unexpected() -> None:
    stray = Source("999999999999", "us-west-2")
    latest = {A: NOW - timedelta(minutes=5), B: NOW - timedelta(hours=3), stray: NOW}
    result = coverage(latest, [A, B, C], NOW, LIMIT)
    assert list(result.watched) == [A, stray]
    assert list(result.silent) == [B]
    assert result.unwatched == [C]
    assert result.unexpected == [stray]
    assert not result.complete


def test_coverage_without_an_expected_list_reports_what_it_heard() -> None:
    result = coverage({A: NOW}, None, NOW, LIMIT)
    assert result.complete
    assert result.lines()[-1] == "1 watched, 0 silent, 0 unwatched, 0 unexpected"


def test_coverage_expected_file_must_map_accounts_to_region_lists(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({A.account: [A.region], B.account: [B.region, C.region]}))
    assert sorted(expected_from_file(good)) == sorted([A, B, C])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({A.account: A.region}))
    with pytest.raises(ValueError, match="account id -> list of regions"):
        expected_from_file(bad)


def test_coverage_command_reads_the_heartbeats_table(
    dynamodb_local: Any, local_table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    store = DynamoDbHeartbeats(dynamodb_local.client(), local_table)
    store.record(Beat(A, now - timedelta(minutes=3)))
    store.record(Beat(B, now - timedelta(hours=5)))
    expected = tmp_path / "org.json"
    expected.write_text(json.dumps({A.account: [A.region, "ap-south-1"], B.account: [B.region]}))
    argv = ["coverage", "--table", local_table, "--endpoint-url", dynamodb_local.endpoint]

    status = main([*argv, "--region", "us-east-1", "--expected", str(expected)])
    out = capsys.readouterr().out
    assert status == 1
    assert f"WATCHED    {A.account} {A.region}" in out
    assert f"SILENT     {B.account} {B.region}" in out
    assert f"UNWATCHED  {A.account} ap-south-1" in out

    # a region an SCP denies is not expected; B's silence still fails the check
    status = main(
        [
            *argv,
            "--region",
            "us-east-1",
            "--expected",
            str(expected),
            "--exclude-region",
            "ap-south-1",
        ]
    )
    assert status == 1
    assert "0 unwatched" in capsys.readouterr().out
    store.record(Beat(B, now))
    status = main(
        [
            *argv,
            "--region",
            "us-east-1",
            "--expected",
            str(expected),
            "--exclude-region",
            "ap-south-1",
        ]
    )
    assert status == 0
    assert (
        capsys.readouterr().out.strip().endswith("2 watched, 0 silent, 0 unwatched, 0 unexpected")
    )
