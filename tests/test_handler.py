"""The Lambda entry point: bad input is skipped and counted, AWS errors are raised (what the
Lambda path refuses before parsing: tests/test_envelope.py)."""

from __future__ import annotations

import io
import json
import logging
import os
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ssm_detect.local_context import LocalLambdaContext
from ssm_detect.wiring import AwsClients, ConfigurationError, lambda_runtime
from tests.conftest import REGION, Invoke, load_event


def emitted_metrics(output: str) -> dict[str, float]:
    """Sum the values of every metric in the EMF blobs Powertools printed."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for definition in blob["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                value = blob[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(values)
    return totals


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "not an object",
        42,
        [],
        {"detail-type": "AWS API Call via CloudTrail", "source": "aws.ssm", "id": "x"},
        {"detail-type": "AWS API Call via CloudTrail", "id": "e", "source": "aws.ssm", "detail": 1},
        {"Records": "nope"},
        {"Records": [None, 1, "x", {"eventSource": "ssm.amazonaws.com"}]},
    ],
)
def test_handler_skips_bad_input_without_raising(payload: object, invoke: Invoke) -> None:
    result = invoke(payload)
    assert result["findings"] == {}
    assert result["ssm_events"] == 0
    assert result["bad_events"] == result["events_seen"]


def test_handler_counts_bad_events_in_metrics(
    invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(load_event("malformed_missing_event_time.json"))
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["BadEvents"] == 1
    assert metrics["EventsSeen"] == 1
    assert metrics["SsmEvents"] == 0


def test_handler_logs_bad_event_with_its_event_id(invoke: Invoke) -> None:
    from handler import app  # noqa: PLC0415

    event = load_event("malformed_event_time_not_a_date.json")
    handler = app.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        invoke(event)
    finally:
        handler.setStream(previous)
    logs = [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    warnings = [entry for entry in logs if entry.get("message") == "skipped bad event"]
    assert len(warnings) == 1
    assert warnings[0]["correlation_id"] == event["detail"]["eventID"]
    assert "eventTime" in warnings[0]["reason"]


def test_handler_logs_malformed_fields_of_a_judged_event(invoke: Invoke) -> None:
    """Fail toward detection: the call is judged and its log line names the odd field."""
    from handler import app  # noqa: PLC0415

    event = load_event("malformed_instance_ids_string.json")
    handler = app.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        result = invoke(event)
    finally:
        handler.setStream(previous)
    logs = [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    lines = [e for e in logs if e.get("message") == "judged event with malformed fields"]
    assert [e["correlation_id"] for e in lines] == [event["detail"]["eventID"]]
    assert "requestParameters.instanceIds" in lines[0]["reason"]
    assert result["bad_events"] == 0
    assert "AWS.SSM.SendCommand" in result["findings"]


def test_processing_goes_on_after_bad_records_in_a_batch(invoke: Invoke) -> None:
    """A CloudTrail file's batch with bad records: the rest is judged. The Lambda path refuses
    such a payload whole (tests/test_envelope.py); the shared loop it uses still copes."""
    from handler import app  # noqa: PLC0415
    from handler.telemetry import PowertoolsTelemetry  # noqa: PLC0415
    from ssm_detect.processing import process_payload  # noqa: PLC0415

    good = load_event("panther_send_command_three_instances.json")
    assert "refused" in invoke({"Records": [good["detail"]]})
    wired = app.runtime("111122223333")

    summary = process_payload(
        {"Records": [{"eventSource": "ssm.amazonaws.com"}, good["detail"], "junk"]},
        wired.pipeline,
        wired.dispatcher,
        PowertoolsTelemetry(app.logger),
    )

    assert summary.bad_events == 2
    assert set(summary.findings) == {"AWS.SSM.SendCommand", "AWS.SSM.DistributedCommand"}


def test_handler_ignores_a_non_ssm_record_quietly_and_refuses_a_non_ssm_source(
    invoke: Invoke, caplog: pytest.LogCaptureFixture
) -> None:
    """Inside an envelope a rule sends, a record of another service is ignored without a word
    (the rule's pattern never sends one, but the check is on the record). An envelope from
    another source (Panther's test 4 as EventBridge would shape it) is not something any rule
    sends: it is refused, loudly."""
    describe = load_event("panther_unrelated_describe_instances.json")

    result = invoke(describe | {"source": "aws.ssm"})
    assert result["ignored"] == 1
    assert result["bad_events"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    refused = invoke(describe)
    assert refused["refused"] == "a source and detail-type no rule sends"
    assert refused["events_seen"] == 0
    assert [r.levelno for r in caplog.records] == [logging.ERROR]


def test_handler_emits_findings_metric_per_detection(
    invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(load_event("panther_send_command_three_instances.json"))
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["Findings"] == 2
    assert metrics["Findings.AWS.SSM.DistributedCommand"] == 1


def test_handler_raises_on_throttled_state_update_so_lambda_retries(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handler import app  # noqa: PLC0415

    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "update_item",
        service_error_code="ProvisionedThroughputExceededException",
        http_status_code=400,
    )
    stubber.activate()
    env = {"STATE_TABLE_NAME": "t"}
    clients = AwsClients(dynamodb=client)
    monkeypatch.setattr(
        app, "runtime", lambda account: lambda_runtime(env, app.logger, account, clients)
    )

    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        app.lambda_handler(
            load_event("panther_send_command_three_instances.json"),
            LocalLambdaContext(),  # type: ignore[arg-type]
        )
    stubber.assert_no_pending_responses()


def test_runtime_refuses_to_start_without_a_table() -> None:
    with pytest.raises(ConfigurationError, match="STATE_TABLE_NAME"):
        lambda_runtime({}, _NullLogger(), "111122223333")


def test_runtime_runs_on_the_default_of_an_invalid_setting_and_reports_it() -> None:
    """Fail safe, not closed (issue 15): tests/test_settings_failsafe.py has the rest."""
    env: dict[str, str] = {"STATE_TABLE_NAME": "t", "FANOUT_THRESHOLD": "0"}
    reported = []
    wired = lambda_runtime(
        env,
        _NullLogger(),
        "111122223333",
        AwsClients(dynamodb=boto3.client("dynamodb", region_name=REGION)),
        on_bad_setting=reported.append,
    )
    assert [p.variable for p in reported] == ["FANOUT_THRESHOLD"]
    assert wired.setting_problems == tuple(reported)
    assert wired.pipeline.settings.fanout_threshold == 2


class _NullLogger:
    def info(self, msg: str, *, extra: Any = None) -> None:
        del msg, extra


def test_environment_has_no_real_credentials() -> None:
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
