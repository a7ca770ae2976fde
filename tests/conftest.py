"""Shared fixtures: fake AWS credentials, moto-backed AWS, the real handler, event files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ssm_detect.local_context import LocalLambdaContext
from ssm_detect.state.tables import ensure_state_table

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
TABLE = "ssm-detect-test-state"
REGION = "us-east-1"

Invoke = Callable[[object], dict[str, Any]]


def load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS, whatever the machine's configuration says."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ssm-detect")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SsmDetect")


@pytest.fixture
def aws() -> Iterator[None]:
    """moto for every AWS API, with the state table created as template.yaml creates it."""
    with mock_aws():
        ensure_state_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        yield


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext()


@pytest.fixture
def invoke(
    aws: None, monkeypatch: pytest.MonkeyPatch, lambda_context: LocalLambdaContext
) -> Iterator[Invoke]:
    """Call the real `handler.app.lambda_handler`, wired from the environment like in Lambda."""
    del aws
    from handler import app  # noqa: PLC0415 - imported after the environment is set

    monkeypatch.setenv("STATE_TABLE_NAME", TABLE)
    app.runtime.cache_clear()

    def call(event: object) -> dict[str, Any]:
        return app.lambda_handler(event, lambda_context)  # type: ignore[arg-type]

    yield call
    app.runtime.cache_clear()
