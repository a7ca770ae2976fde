"""The state table's definition, for local runs and tests (the SAM template defines it in AWS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssm_detect.state.dynamodb import KEY_ATTRIBUTE, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def ensure_state_table(client: DynamoDBClient, name: str) -> None:
    """Create the table as template.yaml does (key `pk`, TTL `expires_at`) if it is missing."""
    try:
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except client.exceptions.ResourceInUseException:
        return
    client.get_waiter("table_exists").wait(TableName=name)
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
