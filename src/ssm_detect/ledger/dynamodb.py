"""The DynamoDB ledger: one item per (detection, account, principal) in the state table.

Claim = a conditional join (`ADD` the decisive event while the anchor is within one window of
the event time, or create the item when there is none); if the condition fails, DynamoDB hands
back the item as it was (`ReturnValuesOnConditionCheckFailure=ALL_OLD`) and we either open a
new window (conditional on the old one being over) or, having lost a race to open, join the
window the winner opened. A first firing and a repeat inside an open window are one write each.

A send lease is an attribute per sink, `lease:<sink>` = {owner, until, window}; it is void
once `until` has passed or when it belongs to an earlier window, so opening a new window need
not clear it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ssm_detect.ledger.base import LedgerEntry, SendLease, SendState, WindowClaim
from ssm_detect.state.dynamodb import KEY_ATTRIBUTE, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Members are the decisive events of a window; past this many the count goes on in a counter
# so the item stays far below DynamoDB's 400 KB (a re-delivered event past the cap may then
# be counted twice; the notification logic does not depend on it).
MEMBER_CAP = 500
_ATTEMPTS = 4
_TTL_MARGIN_SECONDS = 86_400  # Lambda may retry an event for hours; keep the window past that


class DynamoDbLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._conflict = client.exceptions.ConditionalCheckFailedException

    def claim(self, claim: WindowClaim) -> LedgerEntry:
        length = int(claim.window.total_seconds())
        for _ in range(_ATTEMPTS):
            joined, old = self._join(claim, length)
            if joined is not None:
                return joined
            anchor = _number(old, "anchor")
            if anchor is not None and abs(claim.event_epoch - anchor) < length:
                return self._join_past_cap(claim, old)
            if anchor is not None and anchor >= claim.event_epoch + length:
                return _untracked(claim)
            opened = self._open(claim, length)
            if opened is not None:
                return opened
        raise RuntimeError(f"ledger item {claim.key} kept changing under {_ATTEMPTS} attempts")

    def begin_send(self, lease: SendLease) -> SendState:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": lease.key}},
                UpdateExpression="SET #lease = :lease",
                ConditionExpression=(
                    "open_id = :id AND NOT contains(sent, :sink) AND (attribute_not_exists(#lease)"
                    " OR #lease.#until < :now OR #lease.#window <> :id OR #lease.#owner = :owner)"
                ),
                ExpressionAttributeNames=_lease_names(lease.sink),
                ExpressionAttributeValues={
                    ":lease": {
                        "M": {
                            "owner": {"S": lease.owner},
                            "until": {"N": str(lease.until_ms)},
                            "window": {"S": lease.open_id},
                        }
                    },
                    ":id": {"S": lease.open_id},
                    ":sink": {"S": lease.sink},
                    ":now": {"N": str(lease.now_ms)},
                    ":owner": {"S": lease.owner},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._conflict as error:
            old: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
            if old.get("open_id", {}).get("S") != lease.open_id:
                return SendState.TAKEN  # the window is gone: send, there is nothing to record
            return SendState.SENT if lease.sink in _strings(old, "sent") else SendState.HELD
        return SendState.TAKEN

    def mark_sent(self, key: str, open_id: str, sink: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": key}},
                UpdateExpression="ADD sent :s REMOVE #lease",
                ConditionExpression="open_id = :id",
                ExpressionAttributeNames={"#lease": _lease_attribute(sink)},
                ExpressionAttributeValues={":s": {"SS": [sink]}, ":id": {"S": open_id}},
            )
        except self._conflict:
            return  # a newer window replaced this one; its own notification is its concern

    def release(self, lease: SendLease) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": lease.key}},
                UpdateExpression="REMOVE #lease",
                ConditionExpression="#lease.#owner = :owner AND #lease.#window = :id",
                ExpressionAttributeNames={
                    name: value
                    for name, value in _lease_names(lease.sink).items()
                    if name != "#until"
                },
                ExpressionAttributeValues={
                    ":owner": {"S": lease.owner},
                    ":id": {"S": lease.open_id},
                },
            )
        except self._conflict:
            return  # taken over after it expired, or already gone

    def _join(self, claim: WindowClaim, length: int) -> tuple[LedgerEntry | None, dict[str, Any]]:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": claim.key}},
                # No item yet: this firing opens the first window in the same write.
                UpdateExpression=(
                    "ADD members :m SET #ttl = :ttl, anchor = if_not_exists(anchor, :t), "
                    "open_id = if_not_exists(open_id, :id), created = if_not_exists(created, :now)"
                ),
                ConditionExpression=(
                    "attribute_not_exists(anchor) OR "
                    "(anchor > :lo AND anchor < :hi AND size(members) < :cap)"
                ),
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":m": {"SS": [claim.member]},
                    ":t": {"N": str(claim.event_epoch)},
                    ":id": {"S": claim.finding_id},
                    ":now": {"N": str(claim.now_epoch)},
                    ":ttl": {"N": str(claim.now_epoch + length + _TTL_MARGIN_SECONDS)},
                    ":lo": {"N": str(claim.event_epoch - length)},
                    ":hi": {"N": str(claim.event_epoch + length)},
                    ":cap": {"N": str(MEMBER_CAP)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._conflict as error:
            old: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
            return None, old
        return _entry(response["Attributes"]), {}

    def _join_past_cap(self, claim: WindowClaim, old: dict[str, Any]) -> LedgerEntry:
        if claim.member in _strings(old, "members"):
            return _entry(old)
        response = self._client.update_item(
            TableName=self._table,
            Key={KEY_ATTRIBUTE: {"S": claim.key}},
            UpdateExpression="ADD overflow :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )
        return _entry(response["Attributes"])

    def _open(self, claim: WindowClaim, length: int) -> LedgerEntry | None:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": claim.key}},
                UpdateExpression=(
                    "SET anchor = :t, open_id = :id, members = :m, created = :now, #ttl = :ttl "
                    "REMOVE sent, overflow"
                ),
                ConditionExpression="attribute_not_exists(anchor) OR anchor <= :lo",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":t": {"N": str(claim.event_epoch)},
                    ":id": {"S": claim.finding_id},
                    ":m": {"SS": [claim.member]},
                    ":now": {"N": str(claim.now_epoch)},
                    ":ttl": {"N": str(claim.now_epoch + length + _TTL_MARGIN_SECONDS)},
                    ":lo": {"N": str(claim.event_epoch - length)},
                },
                ReturnValues="ALL_NEW",
            )
        except self._conflict:
            return None  # another invocation opened a window meanwhile: join it
        return _entry(response["Attributes"])


def _lease_attribute(sink: str) -> str:
    return f"lease:{sink}"


def _lease_names(sink: str) -> dict[str, str]:
    return {
        "#lease": _lease_attribute(sink),
        "#until": "until",
        "#window": "window",
        "#owner": "owner",
    }


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        open_id=item["open_id"]["S"],
        anchor=_number(item, "anchor") or 0,
        members=_strings(item, "members"),
        sent=_strings(item, "sent"),
        created_epoch=_number(item, "created") or 0,
        overflow=_number(item, "overflow") or 0,
    )


def _untracked(claim: WindowClaim) -> LedgerEntry:
    return LedgerEntry(
        claim.finding_id,
        claim.event_epoch,
        frozenset({claim.member}),
        frozenset(),
        claim.now_epoch,
        tracked=False,
    )


def _strings(item: dict[str, Any], name: str) -> frozenset[str]:
    value = item.get(name)
    return frozenset(value["SS"]) if value and "SS" in value else frozenset()


def _number(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else None
