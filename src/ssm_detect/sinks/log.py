"""A sink that writes each finding as one structured log line (CloudWatch Logs in Lambda)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ssm_detect.findings import Finding


class InfoLogger(Protocol):
    """What we need of a logger: the stdlib's and Powertools' both fit."""

    def info(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> Any: ...


class LogSink:
    name = "log"

    def __init__(self, logger: InfoLogger) -> None:
        self._logger = logger

    def send(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            # Document content stays out of logs: it can hold secrets and attacker text.
            summary = finding.model_dump(mode="json", exclude={"context": {"content"}})
            self._logger.info("finding", extra={"finding": summary})
