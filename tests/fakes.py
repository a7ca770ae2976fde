"""Small in-memory sinks for delivery tests: they record what they got, or fail on demand."""

from __future__ import annotations

from collections.abc import Sequence

from ssm_detect.findings import Finding


class SinkDownError(Exception):
    """What a failing fake sink raises (stands for a throttled or 5xx AWS call)."""


class RecordingSink:
    def __init__(self, name: str, failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.received: list[Finding] = []

    def send(self, findings: Sequence[Finding]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise SinkDownError(self.name)
        self.received.extend(findings)
