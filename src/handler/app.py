"""Lambda entry point: wires logging, metrics, the pipeline and the sinks; decides nothing.

Async invocation from EventBridge: returning means success. Bad input is therefore reported
and skipped inside `process_payload`; anything else (DynamoDB, SNS, Security Hub errors) is
raised so that Lambda retries the event and then hands it to the on-failure destination.
"""

from __future__ import annotations

from handler.startup import collector_paused

# The imports are most of a cold start; startup.py says why the collector sits them out.
with collector_paused():
    import os
    from functools import cache
    from typing import Any

    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from handler.envelope import refusal_of, refuse
    from handler.telemetry import PowertoolsTelemetry, publish_metrics
    from ssm_detect.heartbeat import (
        Beat,
        HeartbeatStore,
        check_time,
        heartbeat_of,
        is_silence_check,
        run_check,
    )
    from ssm_detect.processing import process_payload
    from ssm_detect.settings import SettingProblem
    from ssm_detect.wiring import Runtime, lambda_runtime

logger = Logger()
metrics = Metrics()


@cache
def runtime(account: str) -> Runtime:
    """Built on the first invocation, then reused while the execution environment is warm.

    Building it imports boto3 and makes the clients: start-up objects too (startup.py)."""
    with collector_paused():
        return lambda_runtime(
            os.environ,
            logger,
            account,
            on_unavailable=report_unavailable_sink,
            on_sink_failure=report_sink_failure,
            on_bad_setting=report_bad_setting,
        )


def report_unavailable_sink(reason: str) -> None:
    logger.error(reason)
    metrics.add_metric(name="SinkUnavailable", unit=MetricUnit.Count, value=1)


def report_sink_failure(sink: str, error: Exception) -> None:
    """The invocation fails after this and Lambda retries it; the metric feeds an alarm."""
    logger.error("delivery failed", extra={"sink": sink, "error": type(error).__name__})
    metrics.add_metric(name="PublishFailures", unit=MetricUnit.Count, value=1)


def report_bad_setting(problem: SettingProblem) -> None:
    """Once per cold start; the BadSettings metric repeats on every invocation (below)."""
    logger.error(
        "bad setting %s: running on its default",
        problem.variable,
        extra={"variable": problem.variable, "reason": problem.reason},
    )


def account_of(context: LambdaContext) -> str:
    """arn:aws:lambda:REGION:ACCOUNT:function:NAME"""
    return context.invoked_function_arn.split(":")[4]


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    refusal = refusal_of(event)  # only what the template's rules send (handler/envelope.py)
    if refusal is not None:
        return refuse(refusal, logger, metrics)
    wired = runtime(account_of(context))
    if wired.setting_problems:
        # Every invocation, so the alarm stays raised for as long as the setting is broken.
        metrics.add_metric(
            name="BadSettings", unit=MetricUnit.Count, value=len(wired.setting_problems)
        )
    heartbeats = wired.heartbeats
    if heartbeats is not None:
        beat = heartbeat_of(event)
        if beat is not None:
            return record_heartbeat(heartbeats, beat)
        if is_silence_check(event):
            return silence_check(wired, heartbeats, event, context.aws_request_id)
    summary = process_payload(
        event,
        wired.pipeline,
        wired.dispatcher,
        PowertoolsTelemetry(logger),
        invocation=context.aws_request_id,
    )
    publish_metrics(metrics, summary)
    return summary.as_dict()


def record_heartbeat(heartbeats: HeartbeatStore, beat: Beat) -> dict[str, object]:
    """One conditional write, and nothing else: heartbeats never reach the detections."""
    heartbeats.record(beat)
    metrics.add_metric(name="Heartbeats", unit=MetricUnit.Count, value=1)
    return {"heartbeat": str(beat.source), "at": beat.at.isoformat()}


def silence_check(
    wired: Runtime, heartbeats: HeartbeatStore, event: dict[str, Any], invocation: str
) -> dict[str, object]:
    """Judged as of the scheduled time; findings go through the normal delivery (ledger,
    SNS, Security Hub), and SilentSources feeds the silent-sources alarm on every check."""
    report, findings = run_check(
        heartbeats, check_time(event), wired.pipeline.settings.silence_limit
    )
    for source, last in sorted(report.silent.items()):
        logger.error(
            "silent source: no heartbeat from %s since %s",
            source,
            last.isoformat(),
            extra={"account": source.account, "region": source.region},
        )
    if findings:
        wired.dispatcher.deliver(findings, invocation=invocation)
    metrics.add_metric(name="SilentSources", unit=MetricUnit.Count, value=len(report.silent))
    return report.as_dict()
