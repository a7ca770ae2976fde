"""A sink that writes each finding as one structured log line (CloudWatch Logs in Lambda)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ssm_detect.findings import Finding


class InfoLogger(Protocol):
    """What we need of a logger: the stdlib's and Powertools' both fit."""

    def info(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> Any: ...


_NOT_LOGGED = {"content", "content_findings", "parameter_findings"}


class LogSink:
    name = "log"

    def __init__(self, logger: InfoLogger) -> None:
        self._logger = logger

    def send(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            # Document content and the lines matched in it stay out of logs: they can hold
            # secrets (a token in a curl header) and attacker text. SNS and Security Hub carry them.
            summary = finding.model_dump(mode="json", exclude={"context": _NOT_LOGGED})
            self._logger.info("finding", extra={"finding": summary})
