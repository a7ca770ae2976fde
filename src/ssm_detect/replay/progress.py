"""How the replay reports progress; the engine knows nothing of terminals (render/local.py)."""

from __future__ import annotations

from typing import Protocol


class ReplayProgress(Protocol):
    def phase(self, description: str, total: int) -> None:
        """A new phase of `total` units begins (bytes while reading, events while detecting)."""
        ...

    def advance(self, amount: int = 1) -> None: ...


class NoProgress:
    """For pipes, CI logs and tests: nothing is shown."""

    def phase(self, description: str, total: int) -> None:
        del description, total

    def advance(self, amount: int = 1) -> None:
        del amount
