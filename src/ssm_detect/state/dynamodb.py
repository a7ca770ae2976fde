"""The DynamoDB state store: one table, key `pk`, TTL attribute `expires_at`.

Every update is a single `UpdateItem`: `ADD` unions string sets (atomic, idempotent), `SET`
pushes the TTL forward, and `ReturnValues=ALL_NEW` returns the item as it is after this write,
so there is no read-then-write and no lost update under concurrent invocations.

Member limits are a `ConditionExpression` on the same `UpdateItem` (`size()` of a string set is
its member count); a refused update returns the item as it was through
`ReturnValuesOnConditionCheckFailure=ALL_OLD`, so a refusal costs no second round trip either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from ssm_detect.state.base import StatePrune, StateSnapshot, StateUpdate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

TTL_ATTRIBUTE = "expires_at"
KEY_ATTRIBUTE = "pk"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DynamoDbStateStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client = client
        self._table = table_name
        # TTL is storage hygiene, set from the wall clock; decisions use event times only.
        self._clock = clock

    def apply(self, update: StateUpdate) -> StateSnapshot:
        names = {"#ttl": TTL_ATTRIBUTE}
        values: dict[str, object] = {
            ":ttl": {"N": str(int((self._clock() + update.retention).timestamp()))}
        }
        adds = []
        for index, (attr, added) in enumerate(sorted(update.add.items())):
            if not added:
                continue  # DynamoDB rejects empty sets
            names[f"#a{index}"] = attr
            values[f":a{index}"] = {"SS": sorted(added)}
            adds.append(f"#a{index} :a{index}")
        conditions = []
        for index, (attr, limit) in enumerate(sorted(update.limits.items())):
            names[f"#l{index}"] = attr
            values[f":l{index}"] = {"N": str(limit)}
            conditions.append(f"(attribute_not_exists(#l{index}) OR size(#l{index}) < :l{index})")
        expression = "SET #ttl = :ttl" + (" ADD " + ", ".join(adds) if adds else "")
        condition = {"ConditionExpression": " AND ".join(conditions)} if conditions else {}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": update.key}},
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,  # type: ignore[arg-type]
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **condition,  # type: ignore[arg-type]
            )
        except self._client.exceptions.ConditionalCheckFailedException as refused:
            # A limited set is full: nothing was written; decide on the item as it is.
            held = cast("Mapping[str, AttributeValueTypeDef]", refused.response.get("Item", {}))
            return _sets(held)
        return _sets(response.get("Attributes", {}))

    def prune(self, prune: StatePrune) -> None:
        names: dict[str, str] = {}
        values: dict[str, object] = {}
        deletes = []
        for index, (attr, removed) in enumerate(sorted(prune.remove.items())):
            if not removed:
                continue
            names[f"#d{index}"] = attr
            values[f":d{index}"] = {"SS": sorted(removed)}
            deletes.append(f"#d{index} :d{index}")
        if not deletes:
            return
        names["#k"] = KEY_ATTRIBUTE
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": prune.key}},
                UpdateExpression="DELETE " + ", ".join(deletes),
                # Never resurrect an item that TTL already deleted just to empty its sets.
                ConditionExpression="attribute_exists(#k)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,  # type: ignore[arg-type]
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # the item expired meanwhile: nothing is left to prune


def _sets(item: Mapping[str, AttributeValueTypeDef]) -> StateSnapshot:
    return {
        name: frozenset(value["SS"])
        for name, value in item.items()
        if name not in (KEY_ATTRIBUTE, TTL_ATTRIBUTE) and "SS" in value
    }
