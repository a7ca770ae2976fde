"""The DynamoDB ledger: one item per (detection, account, principal, window) in the state table.

Claim = one `UpdateItem` in the common case: add the decisive event to the window's set (the
item is created by the same write), set the window's clock to now when now is later than it,
and keep the lead if there is one. Two conditions can fail, and DynamoDB hands back the item as
it was (`ReturnValuesOnConditionCheckFailure=ALL_OLD`) so we know which:
- the clock is not earlier than now (two claims in one millisecond, or a Lambda whose clock is
  behind another's): the same write again, advancing the clock by one instead;
- the set is full (`MEMBER_CAP`) and does not hold the firing: count it in `overflow`.
A firing that outranks the lead held takes the lead with one more conditional write (which
advances the clock again, so the import that carries the new lead is the newest).

A send lease is an attribute per sink, `lease:<sink>` = {owner, until, level}; it is void once
`until` has passed. The level a sink has notified is `notified:<sink>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ssm_detect.ledger.base import (
    RETENTION,
    LedgerEntry,
    Mark,
    SendLease,
    SendOutcome,
    SendState,
    WindowClaim,
)
from ssm_detect.state.dynamodb import KEY_ATTRIBUTE, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Members are the decisive events of a window; past this many the count goes on in a counter
# so the item stays far below DynamoDB's 400 KB (a re-delivered event past the cap may then
# be counted twice; the notification logic does not depend on it).
MEMBER_CAP = 500
_ATTEMPTS = 4
_RETENTION_SECONDS = int(RETENTION.total_seconds())


class DynamoDbLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._conflict = client.exceptions.ConditionalCheckFailedException

    def claim(self, claim: WindowClaim) -> LedgerEntry:
        entry = self._join(claim)
        if entry.lead_rank <= claim.lead_rank:
            return entry
        # The item as the lead write found it: a firing that leads ours holds the lead. Its
        # clock may be another claim's; the window it shows is then the same one.
        return self._take_lead(claim)

    def _join(self, claim: WindowClaim) -> LedgerEntry:
        catch_up = False
        for _ in range(_ATTEMPTS):
            try:
                response = self._client.update_item(**self._join_request(claim, catch_up=catch_up))
            except self._conflict as error:
                old: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
                full = len(_strings(old, "members")) >= MEMBER_CAP
                if full and claim.member not in _strings(old, "members"):
                    return self._count_past_cap(claim)
                catch_up = True  # the clock is ahead of ours: advance it by one instead
                continue
            return _entry(response["Attributes"])
        raise RuntimeError(f"ledger item {claim.key} kept changing under {_ATTEMPTS} attempts")

    def _join_request(self, claim: WindowClaim, *, catch_up: bool) -> dict[str, Any]:
        clock = "window_clock = window_clock + :one" if catch_up else "window_clock = :now"
        # A string set cannot be empty: the attribute is added only by claims that name one.
        related = ", related :r" if claim.related else ""
        condition = (
            "(attribute_not_exists(members) OR size(members) < :cap OR contains(members, :m1))"
        )
        if not catch_up:
            condition += " AND (attribute_not_exists(window_clock) OR window_clock < :now)"
        return {
            "TableName": self._table,
            "Key": {KEY_ATTRIBUTE: {"S": claim.key}},
            "UpdateExpression": (
                f"ADD members :m{related} SET {clock}, #ttl = :ttl, window_id = :id, "
                "created = if_not_exists(created, :now), "
                "lead_rank = if_not_exists(lead_rank, :rank), "
                "lead_finding = if_not_exists(lead_finding, :lead)"
            ),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {
                ":m": {"SS": [claim.member]},
                ":m1": {"S": claim.member},
                ":id": {"S": claim.window_id},
                ":now": {"N": str(claim.now_ms)},
                ":ttl": {"N": str(claim.now_ms // 1000 + _RETENTION_SECONDS)},
                ":cap": {"N": str(MEMBER_CAP)},
                ":rank": {"S": claim.lead_rank},
                ":lead": {"B": claim.lead},
                **({":one": {"N": "1"}} if catch_up else {}),
                **({":r": {"SS": sorted(claim.related)}} if claim.related else {}),
            },
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _count_past_cap(self, claim: WindowClaim) -> LedgerEntry:
        response = self._client.update_item(
            TableName=self._table,
            Key={KEY_ATTRIBUTE: {"S": claim.key}},
            UpdateExpression="ADD overflow :one, window_clock :one SET #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":ttl": {"N": str(claim.now_ms // 1000 + _RETENTION_SECONDS)},
            },
            ReturnValues="ALL_NEW",
        )
        return _entry(response["Attributes"])

    def _take_lead(self, claim: WindowClaim) -> LedgerEntry:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": claim.key}},
                UpdateExpression=(
                    "SET lead_rank = :rank, lead_finding = :lead ADD window_clock :one"
                ),
                ConditionExpression="lead_rank > :rank",
                ExpressionAttributeValues={
                    ":rank": {"S": claim.lead_rank},
                    ":lead": {"B": claim.lead},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._conflict as error:
            old: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
            return _entry(old)  # a firing that leads ours took the lead meanwhile
        return _entry(response["Attributes"])

    def begin_send(self, lease: SendLease) -> SendOutcome:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": lease.key}},
                UpdateExpression="SET #lease = :lease",
                ConditionExpression=(
                    "attribute_exists(window_id) "
                    "AND (attribute_not_exists(#notified) OR #notified < :level) "
                    "AND (attribute_not_exists(#lease) OR #lease.#until < :now "
                    "OR #lease.#owner = :owner)"
                ),
                ExpressionAttributeNames=_lease_names(lease.sink),
                ExpressionAttributeValues={
                    ":lease": {
                        "M": {
                            "owner": {"S": lease.owner},
                            "until": {"N": str(lease.until_ms)},
                            "level": {"N": str(lease.level)},
                        }
                    },
                    ":level": {"N": str(lease.level)},
                    ":now": {"N": str(lease.now_ms)},
                    ":owner": {"S": lease.owner},
                },
                # The lease is all this write changes, so the item after it holds the level
                # notified before (DynamoDB Local answers ALL_OLD here with no attributes).
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._conflict as error:
            old: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
            if not old:
                return SendOutcome(SendState.TAKEN)  # expired and deleted: nothing to record
            notified = _number(old, _notified_attribute(lease.sink))
            if notified is not None and notified >= lease.level:
                return SendOutcome(SendState.SENT, notified)
            return SendOutcome(SendState.HELD, notified)
        before = response.get("Attributes", {})
        return SendOutcome(SendState.TAKEN, _number(before, _notified_attribute(lease.sink)))

    def mark_sent(self, key: str, sink: str, level: int) -> None:
        try:
            self._client.update_item(TableName=self._table, **_mark(Mark(key, sink, level)))
        except self._conflict:
            return  # a higher level is recorded already (or the item expired): keep it

    def mark_all_sent(self, marks: Sequence[Mark]) -> None:
        """One `TransactWriteItems` (up to 100 windows; a notification carries a handful). If
        a condition fails (a higher level recorded meanwhile), each is marked on its own."""
        if len(marks) == 1 or len(marks) > _TRANSACTION_LIMIT:
            for mark in marks:
                self.mark_sent(mark.key, mark.sink, mark.level)
            return
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Update": {"TableName": self._table, **_mark(mark)}}  # type: ignore[typeddict-item]
                    for mark in marks
                ]
            )
        except self._client.exceptions.TransactionCanceledException as error:
            reasons = error.response.get("CancellationReasons", [])
            if not any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                raise
            for mark in marks:
                self.mark_sent(mark.key, mark.sink, mark.level)

    def release(self, lease: SendLease) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": lease.key}},
                UpdateExpression="REMOVE #lease",
                ConditionExpression="#lease.#owner = :owner AND #lease.#level = :level",
                ExpressionAttributeNames={
                    "#lease": _lease_attribute(lease.sink),
                    "#owner": "owner",
                    "#level": "level",
                },
                ExpressionAttributeValues={
                    ":owner": {"S": lease.owner},
                    ":level": {"N": str(lease.level)},
                },
            )
        except self._conflict:
            return  # taken over after it expired, or already gone


_TRANSACTION_LIMIT = 100


def _mark(mark: Mark) -> dict[str, Any]:
    """The update that records a notified level (never lowering one) and drops the lease."""
    return {
        "Key": {KEY_ATTRIBUTE: {"S": mark.key}},
        "UpdateExpression": "SET #notified = :level REMOVE #lease",
        "ConditionExpression": (
            "attribute_exists(window_id) "
            "AND (attribute_not_exists(#notified) OR #notified < :level)"
        ),
        "ExpressionAttributeNames": {
            "#notified": _notified_attribute(mark.sink),
            "#lease": _lease_attribute(mark.sink),
        },
        "ExpressionAttributeValues": {":level": {"N": str(mark.level)}},
    }


def _lease_attribute(sink: str) -> str:
    return f"lease:{sink}"


def _notified_attribute(sink: str) -> str:
    return f"notified:{sink}"


def _lease_names(sink: str) -> dict[str, str]:
    return {
        "#lease": _lease_attribute(sink),
        "#notified": _notified_attribute(sink),
        "#until": "until",
        "#owner": "owner",
    }


def _entry(item: dict[str, Any]) -> LedgerEntry:
    notified = {
        name.removeprefix("notified:"): int(value["N"])
        for name, value in item.items()
        if name.startswith("notified:") and "N" in value
    }
    lead = item.get("lead_finding", {}).get("B", b"")
    return LedgerEntry(
        window_id=item["window_id"]["S"],
        members=_strings(item, "members"),
        notified=notified,
        created_ms=_number(item, "created") or 0,
        clock_ms=_number(item, "window_clock") or 0,
        lead_rank=item.get("lead_rank", {}).get("S", ""),
        lead=bytes(lead),
        overflow=_number(item, "overflow") or 0,
        related=_strings(item, "related"),
    )


def _strings(item: dict[str, Any], name: str) -> frozenset[str]:
    value = item.get(name)
    return frozenset(value["SS"]) if value and "SS" in value else frozenset()


def _number(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else None
