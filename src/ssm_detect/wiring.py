"""Build the pipeline and delivery for an entry point. boto3 is imported only when needed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from detections import all_detections
from ssm_detect.delivery import Dispatcher
from ssm_detect.ledger.sqlite import SqliteLedger
from ssm_detect.pipeline import Pipeline
from ssm_detect.settings import Settings
from ssm_detect.sinks.collect import CollectingSink
from ssm_detect.sinks.log import InfoLogger, LogSink
from ssm_detect.state import StateStore
from ssm_detect.state.memory import MemoryStateStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class Runtime:
    pipeline: Pipeline
    dispatcher: Dispatcher


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
    from ssm_detect.ledger.dynamodb import DynamoDbLedger  # noqa: PLC0415
    from ssm_detect.state.dynamodb import DynamoDbStateStore  # noqa: PLC0415

    table = env.get("STATE_TABLE_NAME")
    if not table:
        raise ConfigurationError("STATE_TABLE_NAME is not set")
    try:
        settings = Settings.from_env(env)
    except ValueError as error:
        raise ConfigurationError(f"invalid detection settings: {error}") from error
    dynamodb = client or dynamodb_client()
    dispatcher = Dispatcher(DynamoDbLedger(dynamodb, table), settings, recorders=(LogSink(logger),))
    pipeline = Pipeline(all_detections(), DynamoDbStateStore(dynamodb, table), settings)
    return Runtime(pipeline=pipeline, dispatcher=dispatcher)


def local_runtime(settings: Settings, state_path: Path | None = None) -> Runtime:
    """Embedded state and ledger (in memory, or one SQLite file) and an in-memory sink."""
    store: StateStore
    if state_path is None:
        store, ledger = MemoryStateStore(), SqliteLedger(":memory:")
    else:
        from ssm_detect.state.sqlite import SqliteStateStore  # noqa: PLC0415

        store, ledger = SqliteStateStore(state_path), SqliteLedger(state_path)
    dispatcher = Dispatcher(ledger, settings, recorders=(CollectingSink(),))
    return Runtime(pipeline=Pipeline(all_detections(), store, settings), dispatcher=dispatcher)


def local_pipeline(settings: Settings, store: StateStore) -> Pipeline:
    return Pipeline(all_detections(), store, settings)
