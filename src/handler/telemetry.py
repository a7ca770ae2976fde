"""Powertools logging and metrics for the shared processing loop."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from ssm_detect.ingest import BadEvent
from ssm_detect.processing import Summary


class PowertoolsTelemetry:
    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def event_context(self, event_id: str) -> None:
        self._logger.set_correlation_id(event_id)

    def bad_event(self, bad: BadEvent) -> None:
        self._logger.set_correlation_id(bad.event_id)
        message = "judged event with malformed fields" if bad.judged else "skipped bad event"
        self._logger.warning(message, extra={"reason": bad.reason})


def publish_metrics(metrics: Metrics, summary: Summary) -> None:
    metrics.add_metric(name="EventsSeen", unit=MetricUnit.Count, value=summary.events_seen)
    metrics.add_metric(name="SsmEvents", unit=MetricUnit.Count, value=summary.ssm_events)
    metrics.add_metric(name="BadEvents", unit=MetricUnit.Count, value=summary.bad_events)
    metrics.add_metric(
        name="MalformedEvents", unit=MetricUnit.Count, value=summary.malformed_events
    )
    metrics.add_metric(name="Findings", unit=MetricUnit.Count, value=sum(summary.findings.values()))
    metrics.add_metric(
        name="AllowlistedEvents", unit=MetricUnit.Count, value=sum(summary.allowlisted.values())
    )
    for detection_id, count in summary.findings.items():
        # One metric per detection keeps the flush's shared dimension set (service) unchanged.
        metrics.add_metric(name=f"Findings.{detection_id}", unit=MetricUnit.Count, value=count)
