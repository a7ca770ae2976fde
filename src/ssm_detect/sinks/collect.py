"""A sink that keeps findings in memory: local runs print them, tests assert on them."""

from __future__ import annotations

from collections.abc import Sequence

from ssm_detect.findings import Finding


class CollectingSink:
    name = "collect"

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def send(self, findings: Sequence[Finding]) -> None:
        self.findings.extend(findings)
