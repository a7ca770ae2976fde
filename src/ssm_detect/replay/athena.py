"""Backtests beyond one machine: Amazon Athena reads the trail, we read only the SSM rows.

Over an organisation trail's table as the CloudTrail documentation creates it (the JSON SerDe
over `AWSLogs/...`, partition projection on a date column, `timestamp` by default, formatted
`yyyy/MM/dd`), one query selects the rows of the relevant `eventsource` / `eventname` in the
time range; the partition filter prunes the scan to the range's day folders. Athena returns
every value as text: struct columns are turned into JSON by the query itself
(`json_format(CAST(col AS JSON))`, Athena engine version 3), with the lower-case field names of
the table definition; `requestparameters`, `responseelements` and `additionaleventdata` are
already JSON strings. `record_from_row` rebuilds the CloudTrail record from those columns, with
CloudTrail's own field names, and the record goes through the same engine as a file's.

CloudTrail Lake is the same idea with its own SQL (docs/backtest.md): `StartQuery` with
`SELECT ... FROM <event data store id> WHERE eventSource = ... AND eventTime > ...`, then
`GetQueryResults`; its rows are already CloudTrail's field names.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ssm_detect.models.cloudtrail import SSM_EVENT_SOURCE
from ssm_detect.replay.sources import Problem, RawRecord, SourceItem

if TYPE_CHECKING:
    from mypy_boto3_athena.client import AthenaClient

# Top-level scalar columns: Athena's (lower-case) name -> CloudTrail's.
SCALAR_COLUMNS = {
    "eventversion": "eventVersion",
    "eventid": "eventID",
    "eventtime": "eventTime",
    "eventsource": "eventSource",
    "eventname": "eventName",
    "awsregion": "awsRegion",
    "sourceipaddress": "sourceIPAddress",
    "useragent": "userAgent",
    "errorcode": "errorCode",
    "errormessage": "errorMessage",
    "requestid": "requestID",
    "eventtype": "eventType",
    "apiversion": "apiVersion",
    "recipientaccountid": "recipientAccountId",
    "sharedeventid": "sharedEventID",
    "vpcendpointid": "vpcEndpointId",
    "eventcategory": "eventCategory",
}
# Columns holding JSON text (the SerDe keeps these objects as strings).
JSON_TEXT_COLUMNS = {
    "requestparameters": "requestParameters",
    "responseelements": "responseElements",
    "additionaleventdata": "additionalEventData",
}
# Struct columns, selected as JSON; their field names as the documented table declares them,
# which Athena lower-cases.
STRUCT_COLUMNS = {
    "useridentity": "userIdentity",
    "resources": "resources",
    "tlsdetails": "tlsDetails",
}
BOOLEAN_COLUMNS = {"readonly": "readOnly"}
# Every struct field name in the documented table, lower-case -> CloudTrail's spelling.
_FIELD_NAMES = {
    name.lower(): name
    for name in (
        *("type", "principalId", "arn", "accountId", "invokedBy", "accessKeyId", "userName"),
        *("onBehalfOf", "userId", "identityStoreArn", "sessionContext", "attributes"),
        *("mfaAuthenticated", "creationDate", "sessionIssuer", "ec2RoleDelivery"),
        *("webIdFederationData", "federatedProvider", "sourceIdentity", "credentialId"),
        *("tlsVersion", "cipherSuite", "clientProvidedHostHeader"),
    )
}
# A map, not a struct: its keys are the identity provider's, kept as written.
_FREE_FORM_PARENT = "webIdFederationData"
_RESOURCE_FIELDS = {"arn": "ARN", "accountid": "accountId", "type": "type"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EVENT_NAME = re.compile(r"^[A-Za-z0-9]+$")
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class AthenaTable:
    database: str
    table: str

    @classmethod
    def parse(cls, text: str) -> AthenaTable:
        database, _, table = text.partition(".")
        if not (_IDENTIFIER.match(database) and _IDENTIFIER.match(table)):
            raise ValueError(f"expected DATABASE.TABLE (letters, digits, _), got {text!r}")
        return cls(database, table)


def query_text(
    table: AthenaTable,
    start: datetime,
    end: datetime,
    event_names: Iterable[str] | None = None,
    partition_column: str = "timestamp",
) -> str:
    """The one query: SSM rows of [start, end), the partition filter on the day folders that
    can hold them (delivery runs up to an hour late: s3.DELIVERY_DELAY)."""
    if not _IDENTIFIER.match(partition_column):
        raise ValueError(f"not a column name: {partition_column!r}")
    columns = [*SCALAR_COLUMNS, *JSON_TEXT_COLUMNS, *BOOLEAN_COLUMNS]
    columns += [f"json_format(CAST({c} AS JSON)) AS {c}" for c in STRUCT_COLUMNS]
    first_day, last_day = start.astimezone(UTC), (end + timedelta(hours=1)).astimezone(UTC)
    conditions = [
        f"eventsource = '{SSM_EVENT_SOURCE}'",
        f"\"{partition_column}\" BETWEEN '{first_day:%Y/%m/%d}' AND '{last_day:%Y/%m/%d}'",
        f"eventtime >= '{_iso(start)}'",
        f"eventtime < '{_iso(end)}'",
    ]
    if event_names is not None:
        names = sorted(set(event_names))
        bad = [n for n in names if not _EVENT_NAME.match(n)]
        if bad:
            raise ValueError(f"not event names: {bad}")
        conditions.append("eventname IN (" + ", ".join(f"'{n}'" for n in names) + ")")
    return (
        "SELECT " + ",\n       ".join(columns) + "\n"
        f'FROM "{table.database}"."{table.table}"\n'
        "WHERE " + "\n  AND ".join(conditions)
    )


def _iso(moment: datetime) -> str:
    # CloudTrail writes eventTime as `2025-03-03T10:00:00Z`: text order is time order.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_from_row(row: Mapping[str, str | None]) -> dict[str, Any]:
    """A CloudTrail record from one result row (column name -> text, None for NULL)."""
    record: dict[str, Any] = {}
    for column, name in SCALAR_COLUMNS.items():
        if row.get(column) is not None:
            record[name] = row[column]
    for column, name in BOOLEAN_COLUMNS.items():
        value = row.get(column)
        if value is not None:
            record[name] = value == "true" if value in ("true", "false") else value
    for column, name in JSON_TEXT_COLUMNS.items():
        value = row.get(column)
        if value is not None:
            record[name] = _json_or_text(value)
    for column, name in STRUCT_COLUMNS.items():
        value = row.get(column)
        if value is None:
            continue
        loaded = _json_or_text(value)
        if name == "resources" and isinstance(loaded, list):
            record[name] = [_renamed(r, _RESOURCE_FIELDS) for r in loaded]
        else:
            record[name] = _camel(loaded)
    return record


def _json_or_text(value: str) -> Any:
    """JSON text as its value; anything else as the text (the engine judges it then)."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _camel(value: Any, parent: str = "") -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None:
                continue  # a NULL struct field: CloudTrail leaves the key out
            name = str(_FIELD_NAMES.get(key, key))
            free_form = parent == _FREE_FORM_PARENT and name == "attributes"
            out[name] = item if free_form else _camel(item, name)
        return out
    if isinstance(value, list):
        return [_camel(item, parent) for item in value]
    return value


def _renamed(value: Any, names: Mapping[str, str]) -> Any:
    if not isinstance(value, dict):
        return value
    return {names.get(k, k): v for k, v in value.items() if v is not None}


class AthenaQueryFailedError(Exception):
    """The query ended FAILED or CANCELLED: Athena's reason in the message."""


def run_query(
    client: AthenaClient,
    query: str,
    database: str,
    *,
    workgroup: str | None = None,
    output_location: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Start the query and wait for it; its execution id."""
    arguments: dict[str, Any] = {
        "QueryString": query,
        "QueryExecutionContext": {"Database": database},
    }
    if workgroup:
        arguments["WorkGroup"] = workgroup
    if output_location:
        arguments["ResultConfiguration"] = {"OutputLocation": output_location}
    execution_id = client.start_query_execution(**arguments)["QueryExecutionId"]
    while True:
        execution = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        status = execution.get("Status", {})
        state = status.get("State")
        if state == "SUCCEEDED":
            return execution_id
        if state in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason", "no reason given")
            raise AthenaQueryFailedError(f"Athena query {execution_id} {state}: {reason}")
        sleep(POLL_SECONDS)


def result_records(client: AthenaClient, execution_id: str) -> Iterator[SourceItem]:
    """The rows as CloudTrail records, positioned `athena:EXECUTION:row N`."""
    header: list[str] | None = None
    number = 0
    pages = client.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id)
    for page in pages:
        for row in page.get("ResultSet", {}).get("Rows", []):
            values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
            if header is None:
                header = [str(v).lower() for v in values]  # the first row names the columns
                continue
            number += 1
            origin = f"athena:{execution_id}:row {number}"
            if len(values) != len(header):
                yield Problem(origin, f"{len(values)} values for {len(header)} columns")
                continue
            yield RawRecord(origin, record_from_row(dict(zip(header, values, strict=True))))


def athena_client(region: str | None = None) -> AthenaClient:
    import boto3  # noqa: PLC0415 - only an Athena replay needs it

    return boto3.client("athena", region_name=region)
