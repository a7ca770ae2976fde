"""Build the pipeline and delivery for an entry point. boto3 is imported only when needed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from detections import all_detections
from ssm_detect.delivery import Dispatcher
from ssm_detect.heartbeat import HeartbeatStore
from ssm_detect.ledger.sqlite import SqliteLedger
from ssm_detect.pipeline import Pipeline
from ssm_detect.settings import SettingProblem, Settings
from ssm_detect.sinks import FindingSink
from ssm_detect.sinks.log import InfoLogger, LogSink
from ssm_detect.state import StateStore
from ssm_detect.state.memory import MemoryStateStore

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_securityhub.client import SecurityHubClient
    from mypy_boto3_sns.client import SNSClient


@dataclass(frozen=True)
class Runtime:
    pipeline: Pipeline
    dispatcher: Dispatcher
    setting_problems: tuple[SettingProblem, ...] = ()
    """Settings that did not parse and run on their defaults (alarmed on every invocation)."""
    heartbeats: HeartbeatStore | None = None
    """Where heartbeats are kept (the Lambda's state table); None in local runs."""


class ConfigurationError(Exception):
    """The deployment cannot work at all (no state table): fail loudly at start. A bad
    detection setting is not one: it falls back to its default and is reported."""


# One AWS call's time budget. botocore's defaults (60 s to connect, 60 s to read) equal the
# function's timeout: one stalled connection would consume the whole invocation, so none of the
# retries below could happen inside it and the metrics flush would be skipped. Our calls are
# single-item writes, one SNS publish, one Security Hub batch: a healthy one answers well under
# a second, so a stall is cut after 1 s (connect) or 3 s (read) and retried on a fresh
# connection. `worst_case_call_seconds()` is tested against the template's function timeout.
CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 3
MAX_RETRIES = 4
"""botocore's `max_attempts` counts retries: 1 + 4 = 5 attempts (tests/test_faults.py)."""
_STANDARD_MODE_MAX_BACKOFF_SECONDS = 20


def worst_case_call_seconds() -> float:
    """The longest one AWS call can take before it raises: every attempt stalls to its
    timeouts, and standard mode sleeps up to min(2**n, 20) s before retry n + 1."""
    attempts = 1 + MAX_RETRIES
    backoff = sum(min(1 << n, _STANDARD_MODE_MAX_BACKOFF_SECONDS) for n in range(MAX_RETRIES))
    return attempts * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + backoff


def _retrying() -> Config:
    from botocore.config import Config  # noqa: PLC0415

    # Standard retry mode retries throttling, 5xx and timeouts with backoff before we give up
    # and let Lambda's own retry take over.
    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": MAX_RETRIES},
    )


def dynamodb_client() -> DynamoDBClient:
    import boto3  # noqa: PLC0415 - deferred: replay and tests without AWS never pay for it

    return boto3.client("dynamodb", config=_retrying())


@dataclass
class AwsClients:
    """boto3 clients, created on first use; tests hand in their own."""

    dynamodb: DynamoDBClient | None = None
    sns: SNSClient | None = None
    securityhub: SecurityHubClient | None = None

    def dynamodb_client(self) -> DynamoDBClient:
        if self.dynamodb is None:
            self.dynamodb = dynamodb_client()
        return self.dynamodb

    def sns_client(self) -> SNSClient:
        if self.sns is None:
            import boto3  # noqa: PLC0415

            self.sns = boto3.client("sns", config=_retrying())
        return self.sns

    def securityhub_client(self) -> SecurityHubClient:
        if self.securityhub is None:
            import boto3  # noqa: PLC0415

            self.securityhub = boto3.client("securityhub", config=_retrying())
        return self.securityhub


def lambda_runtime(
    env: Mapping[str, str],
    logger: InfoLogger,
    account: str,
    clients: AwsClients | None = None,
    *,
    on_unavailable: Callable[[str], None] | None = None,
    on_sink_failure: Callable[[str, Exception], None] | None = None,
    on_bad_setting: Callable[[SettingProblem], None] | None = None,
) -> Runtime:
    """The Lambda's wiring. `account` is the function's own account: Security Hub imports
    findings under it (see render/asff.py for the cross-account choice). Each setting that
    does not parse is passed to `on_bad_setting` and replaced by its default."""
    from ssm_detect.heartbeat_dynamodb import DynamoDbHeartbeats  # noqa: PLC0415
    from ssm_detect.ledger.dynamodb import DynamoDbLedger  # noqa: PLC0415
    from ssm_detect.state.dynamodb import DynamoDbStateStore  # noqa: PLC0415

    table = env.get("STATE_TABLE_NAME")
    if not table:
        raise ConfigurationError("STATE_TABLE_NAME is not set")
    settings, problems = Settings.from_env_failsafe(env)
    for problem in problems:
        if on_bad_setting is not None:
            on_bad_setting(problem)
    clients = clients or AwsClients()
    dynamodb = clients.dynamodb_client()
    notifiers: list[FindingSink] = []
    recorders: list[FindingSink] = [LogSink(logger)]
    topic = env.get("FINDINGS_TOPIC_ARN", "").strip()
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    if topic:
        from ssm_detect.render.sns_message import RenderOptions  # noqa: PLC0415
        from ssm_detect.sinks.sns import SnsSink  # noqa: PLC0415

        # Links to the Security Hub finding open where this function imports it.
        options = RenderOptions(
            import_region=region,
            import_account=account,
            redact_content=_flag(env.get("REDACT_CONTENT_IN_NOTIFICATIONS", "false")),
        )
        notifiers.append(SnsSink(clients.sns_client(), topic, options))
    if _flag(env.get("SECURITY_HUB_ENABLED", "false")):
        from ssm_detect.sinks.securityhub import SecurityHubSink  # noqa: PLC0415

        recorders.append(
            SecurityHubSink(
                clients.securityhub_client(),
                region=region,
                account=account,
                product_arn=env.get("SECURITY_HUB_PRODUCT_ARN", "").strip() or None,
                on_unavailable=on_unavailable,
            )
        )
    dispatcher = Dispatcher(
        DynamoDbLedger(dynamodb, table),
        settings,
        notifiers,
        recorders,
        on_sink_failure=on_sink_failure,
    )
    pipeline = Pipeline(all_detections(), DynamoDbStateStore(dynamodb, table), settings)
    return Runtime(
        pipeline=pipeline,
        dispatcher=dispatcher,
        setting_problems=tuple(problems),
        heartbeats=DynamoDbHeartbeats(dynamodb, table),
    )


def _flag(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def local_runtime(settings: Settings, state_path: Path | None = None) -> Runtime:
    """Embedded state and ledger (in memory, or one SQLite file), and no sink: the replay
    takes its findings from what the dispatcher records (`DeliveryReport.recorded`). A sink
    collecting every recorded finding grew the replay's memory with its findings (155 MB at
    10M records, docs/performance.md)."""
    store: StateStore
    if state_path is None:
        store, ledger = MemoryStateStore(), SqliteLedger(":memory:")
    else:
        from ssm_detect.state.sqlite import SqliteStateStore  # noqa: PLC0415

        store, ledger = SqliteStateStore(state_path), SqliteLedger(state_path)
    dispatcher = Dispatcher(ledger, settings)
    return Runtime(pipeline=Pipeline(all_detections(), store, settings), dispatcher=dispatcher)


def local_pipeline(settings: Settings, store: StateStore) -> Pipeline:
    return Pipeline(all_detections(), store, settings)
