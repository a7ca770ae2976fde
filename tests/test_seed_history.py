"""`ssm-detect seed-history`: history in, state out, and no findings.

DynamoDB is moto's. moto 5.2.5 does not implement CloudTrail's LookupEvents (it raises
NotImplementedError), so the LookupEvents tests stub the real boto3 client with botocore's
Stubber, which also checks every request against the API's shape.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ssm_detect.cli import main
from ssm_detect.replay import lookup
from ssm_detect.seeding import seed_history
from ssm_detect.settings import Allowlist, AllowRule, Settings
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.builders import T0, create_document, envelope, parse, send_command
from tests.conftest import REGION, TABLE, Invoke

RARE = "AWS.SSM.RareCommandDocumentCreator"
CHANGER = "AWS.SSM.DocumentVersionByNewPrincipal"
FANOUT = "AWS.SSM.DistributedCommand"
CREATOR = "arn:aws:iam::111122223333:role/DevOpsEngineer"
OPERATOR = "arn:aws:iam::111122223333:role/PlatformOps"


def days(n: float) -> timedelta:
    return timedelta(days=n)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Last week's trail: DevOpsEngineer created a Command document, PlatformOps ran
    commands on two instances (ten minutes before the 'live' events below)."""
    folder = tmp_path / "history"
    folder.mkdir()
    records = [
        create_document(event_id="old-cd", at=T0 - days(3)),
        send_command(["i-0aaaaaaaaaaaaaaa1"], event_id="old-sc-1", at=T0 - minutes(10)),
        send_command(["i-0aaaaaaaaaaaaaaa2"], event_id="old-sc-2", at=T0 - minutes(5)),
    ]
    (folder / "trail.json").write_text(json.dumps({"Records": records}))
    return folder


Capsys = pytest.CaptureFixture[str]


def seed(capsys: Capsys, *args: str) -> tuple[int, str, str]:
    code = main(["seed-history", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def replay_jsonl(capsys: Capsys, *args: str) -> list[dict[str, Any]]:
    assert main(["replay", "--output", "jsonl", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def table_items() -> dict[str, dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=REGION)
    items = client.scan(TableName=TABLE)["Items"]
    return {item["pk"]["S"]: item for item in items}


# --- files into SQLite --------------------------------------------------------------------


def test_seed_sqlite_then_replay_does_not_flag_a_seeded_creator(
    tmp_path: Path, history: Path, capsys: Capsys
) -> None:
    state = tmp_path / "state.sqlite"
    live = tmp_path / "live.json"
    live.write_text(json.dumps([create_document(event_id="new-cd", at=T0, name="Ops-Next")]))

    code, out, _ = seed(capsys, "--state", str(state), str(history))

    assert code == 0
    assert out.splitlines() == [
        "read 3 events from 1 file(s): 3 SSM, 0 ignored (other services, SSM calls no "
        "detection reads), 0 duplicates, 0 bad input skipped",
        # The creation also seeds its author as a known changer of the document (issue 12.1);
        # the SendCommand also feeds the probing detection's window (issue 12 point 7).
        f"applied 6 state updates: 2 principal(s) seeded into {state} (state items: "
        "DistributedCommand 1, DocumentVersionByNewPrincipal 1, RareCommandDocumentCreator 1, "
        "SendCommandProbing 1)",
        "no findings, nothing notified",
    ]
    assert replay_jsonl(capsys, "--state", str(state), str(live)) == []
    # The same event without the seeded history is a rare creation.
    assert [f["detection_id"] for f in replay_jsonl(capsys, str(live))] == [RARE]


def test_seed_sqlite_writes_state_and_no_ledger(
    tmp_path: Path, history: Path, capsys: Capsys
) -> None:
    state = tmp_path / "state.sqlite"
    assert seed(capsys, "--state", str(state), str(history))[0] == 0
    with sqlite3.connect(state) as db:
        keys = {row[0] for row in db.execute("SELECT DISTINCT pk FROM members")}
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert f"creator#111122223333#{CREATOR}" in keys
    assert f"fanout#111122223333#{OPERATOR}" in keys
    assert "ledger" not in tables


def test_seeded_fanout_history_counts_toward_a_live_fanout(
    tmp_path: Path, history: Path, capsys: Capsys
) -> None:
    """Two instances seeded from history + one live = three within the hour: a fan-out that an
    empty store would have missed."""
    state = tmp_path / "state.sqlite"
    live = tmp_path / "live.json"
    live.write_text(json.dumps([send_command(["i-0aaaaaaaaaaaaaaa3"], event_id="sc", at=T0)]))
    seed(capsys, "--state", str(state), str(history))
    fired = {f["detection_id"] for f in replay_jsonl(capsys, "--state", str(state), str(live))}
    assert FANOUT in fired
    assert FANOUT not in {f["detection_id"] for f in replay_jsonl(capsys, str(live))}


# --- files into DynamoDB -----------------------------------------------------------------


def test_seed_dynamodb_then_the_handler_does_not_flag_a_seeded_creator(
    aws: None, invoke: Invoke, history: Path, capsys: Capsys
) -> None:
    code, out, _ = seed(capsys, "--table", TABLE, "--region", REGION, str(history))
    assert code == 0
    assert f"DynamoDB table {TABLE}" in out

    seeded = invoke(envelope(create_document(event_id="live-cd", at=T0, name="Ops-Next")))
    other = create_document(event_id="live-other", at=T0, name="Ops-Other")
    other["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = (
        "arn:aws:iam::111122223333:role/NeverSeen"
    )
    unseeded = invoke(envelope(other))

    assert RARE not in seeded["findings"]
    assert unseeded["findings"] == {RARE: 1}


def test_seed_dynamodb_writes_only_state_items(aws: None, history: Path, capsys: Capsys) -> None:
    seed(capsys, "--table", TABLE, "--region", REGION, str(history))
    items = table_items()
    assert f"creator#111122223333#{CREATOR}" in items
    assert f"fanout#111122223333#{OPERATOR}" in items
    assert not [key for key in items if key.startswith("ledger#")]
    creations = items[f"creator#111122223333#{CREATOR}"]["created"]["SS"]
    assert [m.split("|", 1)[1] for m in creations] == ["old-cd"]


def test_seed_twice_changes_nothing(aws: None, history: Path, capsys: Capsys) -> None:
    seed(capsys, "--table", TABLE, "--region", REGION, str(history))
    first = {
        k: {a: v for a, v in item.items() if a != "expires_at"} for k, item in table_items().items()
    }
    seed(capsys, "--table", TABLE, "--region", REGION, str(history))
    again = {
        k: {a: v for a, v in item.items() if a != "expires_at"} for k, item in table_items().items()
    }
    assert again == first


def test_seed_into_a_missing_table_fails_in_one_line(
    aws: None, history: Path, capsys: Capsys
) -> None:
    code, _, err = seed(capsys, "--table", "no-such-table", "--region", REGION, str(history))
    assert code == 2
    assert err == "ssm-detect: no DynamoDB table 'no-such-table' in this account and region\n"


# --- LookupEvents --------------------------------------------------------------------------


def lookup_page(*records: dict[str, Any], next_token: str | None = None) -> dict[str, Any]:
    events = [
        {"EventId": r["eventID"], "EventName": r["eventName"], "CloudTrailEvent": json.dumps(r)}
        for r in records
    ]
    return {"Events": events, **({"NextToken": next_token} if next_token else {})}


def expect_lookup(
    stubber: Stubber, name: str, page: dict[str, Any], token: str | None = None
) -> None:
    params: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
        "StartTime": ANY,
        "EndTime": ANY,
    }
    if token:
        params["NextToken"] = token
    stubber.add_response("lookup_events", page, params)


@pytest.fixture
def cloudtrail(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("cloudtrail", region_name=REGION)
    monkeypatch.setattr(lookup, "cloudtrail_client", lambda region: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_seed_from_lookup_events_pages_through_both_event_names(
    aws: None, invoke: Invoke, cloudtrail: Stubber, capsys: Capsys
) -> None:
    # Newest first, as LookupEvents returns them; SendCommand spans two pages.
    expect_lookup(
        cloudtrail,
        "SendCommand",
        lookup_page(
            send_command(["i-0aaaaaaaaaaaaaaa2"], event_id="lk-sc-2", at=T0 - minutes(5)),
            next_token="page-2",
        ),
    )
    expect_lookup(
        cloudtrail,
        "SendCommand",
        lookup_page(send_command(["i-0aaaaaaaaaaaaaaa1"], event_id="lk-sc-1", at=T0 - minutes(10))),
        token="page-2",
    )
    expect_lookup(
        cloudtrail,
        "CreateDocument",
        lookup_page(create_document(event_id="lk-cd", at=T0 - days(2))),
    )

    code, out, _ = seed(
        capsys, "--table", TABLE, "--region", REGION, "--from-lookup-events", "--days", "7"
    )

    assert code == 0
    assert out.startswith("read 3 events from CloudTrail LookupEvents: 3 SSM,")
    items = table_items()
    instances = items[f"fanout#111122223333#{OPERATOR}"]["instances"]["SS"]
    assert sorted(member.rsplit("|", 1)[1] for member in instances) == [
        "i-0aaaaaaaaaaaaaaa1",
        "i-0aaaaaaaaaaaaaaa2",
    ]
    result = invoke(envelope(create_document(event_id="live-cd", at=T0, name="Ops-Next")))
    assert RARE not in result["findings"]


def test_seed_from_lookup_events_reports_a_result_that_is_not_json(
    aws: None, cloudtrail: Stubber, capsys: Capsys
) -> None:
    page = lookup_page(create_document(event_id="lk-cd", at=T0))
    page["Events"].append({"EventId": "broken", "CloudTrailEvent": "{truncated"})
    expect_lookup(cloudtrail, "SendCommand", {"Events": []})
    expect_lookup(cloudtrail, "CreateDocument", page)

    code, out, err = seed(capsys, "--table", TABLE, "--region", REGION, "--from-lookup-events")

    assert code == 0
    assert "1 bad input skipped" in out
    assert err.startswith(
        "skipped: LookupEvents(EventName=CreateDocument):page 1:Events[1]: "
        "CloudTrailEvent is not JSON"
    )


def test_seed_from_lookup_events_api_error_fails_in_one_line(
    aws: None, cloudtrail: Stubber, capsys: Capsys
) -> None:
    cloudtrail.add_client_error("lookup_events", "AccessDeniedException", "not allowed")
    code, _, err = seed(capsys, "--table", TABLE, "--region", REGION, "--from-lookup-events")
    assert code == 1
    assert err.startswith("ssm-detect: AWS error while seeding (safe to re-run): ")
    assert err.count("\n") == 1


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--state", "s.sqlite"],
            "give CloudTrail files or folders, s3:// URLs or --athena, or --from-lookup-events"
            " (one of them)",
        ),
        (
            ["--state", "s.sqlite", "--from-lookup-events", "events"],
            "give CloudTrail files or folders, s3:// URLs or --athena, or --from-lookup-events"
            " (one of them)",
        ),
        (["--state", "s.sqlite", "--days", "3", "events"], "--days goes with --from-lookup-events"),
        (
            ["--state", "s.sqlite", "--from-lookup-events", "--days", "91"],
            "--days must be more than 0 and at most 90",
        ),
        (["--state", "s.sqlite", "no/such/folder"], "no such file or folder: no/such/folder"),
        (
            ["--state", "no/dir/s.sqlite", "events"],
            "cannot open state file no/dir/s.sqlite: unable to open database file",
        ),
    ],
)
def test_seed_rejects_bad_options_in_one_line(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "events").mkdir()
    code, _, err = seed(capsys, *args)
    assert code == 2
    assert err == f"ssm-detect: {message}\n"
    assert not (tmp_path / "s.sqlite").exists()


# --- the library function --------------------------------------------------------------------


def test_seed_history_skips_allowlisted_principals_as_live_processing_does() -> None:
    allowed = AllowRule(principals=(CREATOR,))
    settings = Settings(allowlist=Allowlist({RARE: allowed, CHANGER: allowed}))
    store = MemoryStateStore()
    report = seed_history([parse(create_document(at=T0))], local_pipeline(settings, store))
    assert report.events == 1
    assert report.updates == 0
    assert report.principals == set()


def test_seed_history_writes_no_chain_creation_without_a_verdict() -> None:
    """The chain detection remembers only creations the rare-creator detection flagged;
    seeding decides nothing, so history never starts a chain. (The creation is history for
    both first-seen detections: the creator's, and its author as a changer of the document.)"""
    store = MemoryStateStore()
    report = seed_history([parse(create_document(at=T0))], local_pipeline(Settings(), store))
    assert report.items == {RARE: 1, CHANGER: 1}
