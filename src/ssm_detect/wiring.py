"""Build the pipeline and sinks for an entry point. boto3 is imported only when it is needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detections import all_detections
from ssm_detect.pipeline import Pipeline
from ssm_detect.settings import Settings
from ssm_detect.sinks import FindingSink
from ssm_detect.sinks.log import InfoLogger, LogSink
from ssm_detect.state import StateStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class Runtime:
    pipeline: Pipeline
    sinks: Sequence[FindingSink]


class ConfigurationError(Exception):
    """The deployment is misconfigured: fail loudly at start, not per event."""


def dynamodb_client() -> DynamoDBClient:
    import boto3  # noqa: PLC0415 - deferred: replay and tests without AWS never pay for it
    from botocore.config import Config  # noqa: PLC0415

    # Standard retry mode retries throttling and 5xx with backoff before we give up and let
    # Lambda's own retry take over.
    return boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 4}))


def lambda_runtime(
    env: Mapping[str, str],
    logger: InfoLogger,
    client: DynamoDBClient | None = None,
) -> Runtime:
    from ssm_detect.state.dynamodb import DynamoDbStateStore  # noqa: PLC0415

    table = env.get("STATE_TABLE_NAME")
    if not table:
        raise ConfigurationError("STATE_TABLE_NAME is not set")
    try:
        settings = Settings.from_env(env)
    except ValueError as error:
        raise ConfigurationError(f"invalid detection settings: {error}") from error
    store = DynamoDbStateStore(client or dynamodb_client(), table)
    return Runtime(pipeline=local_pipeline(settings, store), sinks=(LogSink(logger),))


def local_pipeline(settings: Settings, store: StateStore) -> Pipeline:
    return Pipeline(all_detections(), store, settings)
