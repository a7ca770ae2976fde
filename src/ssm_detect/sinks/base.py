"""The sink contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ssm_detect.findings import Finding


class FindingSink(Protocol):
    name: str

    def send(self, findings: Sequence[Finding]) -> None:
        """Deliver every finding or raise: a failed delivery must fail the invocation."""
        ...
