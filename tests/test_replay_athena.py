"""`ssm-detect replay --athena DATABASE.TABLE`: the query, the column mapping, the client flow.

Athena's side is simulated from the CloudTrail table the AWS documentation creates: each event
file's record becomes the row Athena would return (lower-case columns, struct columns as the
query's `json_format(CAST(... AS JSON))` with lower-case field names and only the fields the
table declares, JSON text for requestparameters / responseelements, NULLs as missing values),
and must come back as the same record, for the fields the table keeps, with the same verdicts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID

from ssm_detect.cli import main
from ssm_detect.replay.athena import (
    SCALAR_COLUMNS,
    STRUCT_COLUMNS,
    AthenaQueryFailedError,
    AthenaTable,
    query_text,
    record_from_row,
    result_records,
    run_query,
)
from ssm_detect.replay.sources import RawRecord
from tests.conftest import EVENTS, REGION

# The table's struct columns as the CloudTrail documentation declares them (field -> nested
# declaration, or None for a scalar; "map" for map<string,string>).
USER_IDENTITY: dict[str, Any] = {
    "type": None,
    "principalId": None,
    "arn": None,
    "accountId": None,
    "invokedBy": None,
    "accessKeyId": None,
    "userName": None,
    "onBehalfOf": {"userId": None, "identityStoreArn": None},
    "sessionContext": {
        "attributes": {"mfaAuthenticated": None, "creationDate": None},
        "sessionIssuer": {
            "type": None,
            "principalId": None,
            "arn": None,
            "accountId": None,
            "userName": None,
        },
        "ec2RoleDelivery": None,
        "webIdFederationData": {"federatedProvider": None, "attributes": "map"},
        "sourceIdentity": None,
    },
}
TLS_DETAILS: dict[str, Any] = {
    "tlsVersion": None,
    "cipherSuite": None,
    "clientProvidedHostHeader": None,
}
RESOURCE: dict[str, Any] = {"ARN": None, "accountId": None, "type": None}
JSON_TEXT = {
    "requestparameters": "requestParameters",
    "responseelements": "responseElements",
    "additionaleventdata": "additionalEventData",
}


def _project(value: Any, declared: Any) -> Any:
    """What the table keeps of `value`: declared fields only, in CloudTrail's spelling."""
    if declared is None or declared == "map" or not isinstance(value, dict):
        return value
    return {k: _project(v, declared[k]) for k, v in value.items() if k in declared}


def _athena_json(value: Any, declared: Any) -> Any:
    """The same, as Athena's JSON of the struct: lower-case field names, declared ones only."""
    if declared is None or declared == "map" or not isinstance(value, dict):
        return value
    return {k.lower(): _athena_json(v, declared[k]) for k, v in value.items() if k in declared}


def athena_row(record: dict[str, Any]) -> dict[str, str | None]:
    row: dict[str, str | None] = {c: record.get(n) for c, n in SCALAR_COLUMNS.items()}
    for column, name in JSON_TEXT.items():
        row[column] = json.dumps(record[name]) if record.get(name) is not None else None
    read_only = record.get("readOnly")
    row["readonly"] = None if read_only is None else str(read_only).lower()
    identity = record.get("userIdentity")
    row["useridentity"] = json.dumps(_athena_json(identity, USER_IDENTITY)) if identity else None
    resources = record.get("resources")
    row["resources"] = (
        json.dumps([_athena_json(r, RESOURCE) for r in resources]) if resources else None
    )
    tls = record.get("tlsDetails")
    row["tlsdetails"] = json.dumps(_athena_json(tls, TLS_DETAILS)) if tls else None
    return row


def expected_record(record: dict[str, Any]) -> dict[str, Any]:
    kept = {n: record[n] for n in SCALAR_COLUMNS.values() if record.get(n) is not None}
    for name in (*JSON_TEXT.values(), "readOnly"):
        if record.get(name) is not None:
            kept[name] = record[name]
    if record.get("userIdentity"):
        kept["userIdentity"] = _project(record["userIdentity"], USER_IDENTITY)
    if record.get("resources"):
        kept["resources"] = [_project(r, RESOURCE) for r in record["resources"]]
    if record.get("tlsDetails"):
        kept["tlsDetails"] = _project(record["tlsDetails"], TLS_DETAILS)
    return kept


def event_records() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EVENTS.glob("*.json")):
        loaded = json.loads(path.read_text())
        detail = loaded.get("detail", loaded)
        if isinstance(detail, dict) and "eventID" in detail:
            found.append((path.name, detail))
    return found


@pytest.mark.parametrize(("name", "record"), event_records(), ids=[n for n, _ in event_records()])
def test_every_event_file_round_trips_through_athena_columns(
    name: str, record: dict[str, Any]
) -> None:
    assert record_from_row(athena_row(record)) == expected_record(record)


def test_the_table_keeps_every_field_the_detections_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same findings from the files and from their Athena rows."""
    records = [r for _, r in event_records()]
    (tmp_path / "original.json").write_text(json.dumps({"Records": records}))
    rebuilt = [record_from_row(athena_row(r)) for r in records]
    (tmp_path / "rebuilt" / "x").mkdir(parents=True)
    (tmp_path / "rebuilt" / "x" / "rebuilt.json").write_text(json.dumps({"Records": rebuilt}))
    outputs = []
    for path in (tmp_path / "original.json", tmp_path / "rebuilt"):
        assert main(["replay", "--output", "jsonl", "--jobs", "1", str(path)]) == 0
        lines = capsys.readouterr().out.splitlines()
        outputs.append(
            sorted((f["detection_id"], f["event_ids"][-1]) for f in map(json.loads, lines))
        )
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 20


def test_query_is_one_partition_pruned_select_of_ssm_rows() -> None:
    table = AthenaTable.parse("security_lake.org_trail")
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    text = query_text(table, start, end, ["SendCommand", "CreateDocument"])
    assert 'FROM "security_lake"."org_trail"' in text
    assert "eventsource = 'ssm.amazonaws.com'" in text
    assert "\"timestamp\" BETWEEN '2025/03/01' AND '2025/04/01'" in text
    assert "eventtime >= '2025-03-01T00:00:00Z'" in text
    assert "eventtime < '2025-04-01T00:00:00Z'" in text
    assert "eventname IN ('CreateDocument', 'SendCommand')" in text
    for column in STRUCT_COLUMNS:
        assert f"json_format(CAST({column} AS JSON)) AS {column}" in text
    assert "eventname IN" not in query_text(table, start, end)
    custom = query_text(table, start, end, partition_column="dt")
    assert "\"dt\" BETWEEN '2025/03/01'" in custom


@pytest.mark.parametrize("bad", ["db", "db.", "db.t; DROP", "d-b.t", ".t"])
def test_table_names_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match=r"DATABASE\.TABLE"):
        AthenaTable.parse(bad)


def test_event_names_and_partition_column_are_checked() -> None:
    table, now = AthenaTable("d", "t"), datetime(2025, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="not event names"):
        query_text(table, now, now, ["SendCommand' OR '1'='1"])
    with pytest.raises(ValueError, match="not a column"):
        query_text(table, now, now, partition_column='x" OR 1=1 --')


def _inject(rows: list[dict[str, str | None]]) -> None:
    """Results moto's Athena hands to the next query (its documented test hook)."""
    header = list(rows[0]) if rows else []
    data = [{"Data": [{"VarCharValue": c} for c in header]}]
    data += [{"Data": [{} if v is None else {"VarCharValue": v} for v in r.values()]} for r in rows]
    info = [{"Name": c, "Type": "varchar"} for c in header]
    athena_backends[DEFAULT_ACCOUNT_ID][REGION].query_results_queue.append(QueryResults(data, info))


def test_client_flow_reads_the_rows_of_the_query_it_started() -> None:
    records = [r for _, r in event_records()[:5]]
    with mock_aws():
        client = boto3.client("athena", region_name=REGION)
        _inject([athena_row(r) for r in records])
        slept: list[float] = []
        execution = run_query(
            client,
            "SELECT 1",
            "db",
            workgroup="primary",
            output_location="s3://out/",
            sleep=slept.append,
        )
        items = list(result_records(client, execution))
        started = client.get_query_execution(QueryExecutionId=execution)["QueryExecution"]
    assert started["Query"] == "SELECT 1"
    assert started["QueryExecutionContext"]["Database"] == "db"
    assert [i.body for i in items if isinstance(i, RawRecord)] == [
        expected_record(r) for r in records
    ]
    assert items[0].origin == f"athena:{execution}:row 1"


def test_a_failed_query_is_reported_with_athenas_reason() -> None:
    class Failing:
        def start_query_execution(self, **_: Any) -> dict[str, str]:
            return {"QueryExecutionId": "q1"}

        def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:  # noqa: N803
            status = {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND: org_trail"}
            return {"QueryExecution": {"Status": status}}

    with pytest.raises(AthenaQueryFailedError, match="TABLE_NOT_FOUND"):
        run_query(Failing(), "SELECT 1", "db")  # type: ignore[arg-type]


def test_replay_athena_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    records = [r for _, r in event_records()]
    with mock_aws():
        _inject([athena_row(r) for r in records])
        code = main(
            [
                "replay",
                "--athena",
                "db.org_trail",
                "--start",
                "2020-01-01T00:00:00Z",
                "--end",
                "2030-01-01T00:00:00Z",
                "--output",
                "jsonl",
                "--region",
                REGION,
            ]
        )
    assert code == 0
    captured = capsys.readouterr()
    findings = [json.loads(line) for line in captured.out.splitlines()]
    assert {f["detection_id"] for f in findings} >= {
        "AWS.SSM.SendCommand",
        "AWS.SSM.DistributedCommand",
    }
    summary = json.loads(captured.err.splitlines()[0])
    assert summary["events_seen"] == len(records)
