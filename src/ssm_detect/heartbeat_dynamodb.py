"""Heartbeats in the state table: 16 items, `heartbeats#0` .. `heartbeats#15`.

A source (account, region) lives in the item its CRC-32 picks, as two numeric attributes:
`b#<account>#<region>` (the latest heartbeat, epoch seconds) and, while it is reported silent,
`s#<account>#<region>` (the heartbeat it went silent after). Sixteen items keep each well under
DynamoDB's 400 KB for a hundred thousand sources, and let the check read them all with one
BatchGetItem instead of a Scan of the whole table. The items carry no TTL: a heartbeat must
outlive any silence.

Recording is one `UpdateItem` whose condition keeps the later heartbeat: out-of-order delivery
never moves a source back in time, and a refused write is simply an older heartbeat.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ssm_detect.heartbeat import Beat, Source

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SHARDS = 16
_KEY = "pk"
_MAX_ROUNDS = 5


class HeartbeatReadError(Exception):
    """DynamoDB kept some heartbeat items unprocessed: the check fails and is retried."""


def shard_key(source: Source) -> str:
    return f"heartbeats#{zlib.crc32(f'{source.account}#{source.region}'.encode()) % SHARDS}"


def _epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def _moment(value: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(value["N"]), UTC)


def _source(attribute: str) -> Source:
    _, account, region = attribute.split("#", 2)
    return Source(account, region)


class DynamoDbHeartbeats:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, beat: Beat) -> None:
        name = f"b#{beat.source.account}#{beat.source.region}"
        try:
            self._client.update_item(
                TableName=self._table,
                Key={_KEY: {"S": shard_key(beat.source)}},
                UpdateExpression="SET #b = :t",
                ConditionExpression="attribute_not_exists(#b) OR #b < :t",
                ExpressionAttributeNames={"#b": name},
                ExpressionAttributeValues={":t": {"N": _epoch(beat.at)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # a later heartbeat is already stored

    def latest(self) -> dict[Source, datetime]:
        return self._read("b#")

    def silenced(self) -> dict[Source, datetime]:
        return self._read("s#")

    def mark_silent(self, source: Source, since: datetime) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={_KEY: {"S": shard_key(source)}},
            UpdateExpression="SET #s = :t",
            ExpressionAttributeNames={"#s": f"s#{source.account}#{source.region}"},
            ExpressionAttributeValues={":t": {"N": _epoch(since)}},
        )

    def clear(self, source: Source, *, forget: bool = False) -> None:
        names = {"#s": f"s#{source.account}#{source.region}"}
        if forget:
            names["#b"] = f"b#{source.account}#{source.region}"
        self._client.update_item(
            TableName=self._table,
            Key={_KEY: {"S": shard_key(source)}},
            UpdateExpression="REMOVE " + ", ".join(names),
            ExpressionAttributeNames=names,
        )

    def _read(self, prefix: str) -> dict[Source, datetime]:
        found: dict[Source, datetime] = {}
        for item in self._items():
            for attribute, value in item.items():
                if attribute.startswith(prefix) and "N" in value:
                    found[_source(attribute)] = _moment(value)
        return found

    def _items(self) -> list[dict[str, Any]]:
        """All sixteen items in one BatchGetItem (plus a retry for any it left unprocessed)."""
        request: Any = {
            self._table: {"Keys": [{_KEY: {"S": f"heartbeats#{n}"}} for n in range(SHARDS)]}
        }
        items: list[dict[str, Any]] = []
        for _ in range(_MAX_ROUNDS):
            response = self._client.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self._table, []))
            request = response.get("UnprocessedKeys")
            if not request:
                return items
        raise HeartbeatReadError(f"heartbeat items still unprocessed after {_MAX_ROUNDS} reads")
