"""What the three shared state blocks have in common: a key, an observation, one round trip.

A block turns what a detection observed in one event (an `Observation`) into one atomic
`StateUpdate` for one key, and reads the item the store returns into a `Reading` the detection
judges on. The read is pure: it sees the item after this event's own write (or, when the store
refused the write at a limit, the item plus this event's own members), so two concurrent
invocations cannot both miss each other, and a retried event reads what its first attempt read
plus whatever arrived meanwhile. An optional prune (batched, idempotent) keeps the item bounded.

The blocks (`first_seen`, `distinct_window`, `correlate`) and how a detection declares one:
`detections.stateful.StatefulDetection`. The store contract: `ssm_detect.state.base`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from ssm_detect.state.base import StatePrune, StateSnapshot, StateUpdate

LATENESS = timedelta(hours=26)
"""How late an event may arrive and still be judged exactly against the window it belongs to.

The longest delivery path is an organisation's: a member account's forwarding rule retries for
24 hours (EventBridge's default for its cross-account target), then the central rule retries for
1 hour and Lambda's asynchronous queue keeps the event for 1 hour more (template.yaml sets both).
CloudTrail itself delivers within minutes. So every block keeps members for its window plus 26
hours of event time, and sets its TTL (wall clock, storage hygiene only) to the same span after
the last write: no event that the delivery path can still hand us finds its window expired. An
event later than that (a manual redrive of a failure queue, up to 14 days) is judged on what the
item still holds, which can count fewer members, never more; `ssm-detect replay` of the period
re-judges it exactly."""

Observation = TypeVar("Observation")
Reading = TypeVar("Reading")


@dataclass(frozen=True)
class StateKey:
    """The item a block keeps: `<kind>#<account>#<name>`, or `<kind>#<account>#<region>#<name>`
    for regional resources (documents, associations, automations, sessions, parameters live in
    one account and region; principals are global)."""

    kind: str
    account: str
    name: str
    region: str | None = None

    def __str__(self) -> str:
        if self.region is None:
            return f"{self.kind}#{self.account}#{self.name}"
        return f"{self.kind}#{self.account}#{self.region}#{self.name}"


class Block(ABC, Generic[Observation, Reading]):
    """One shared state shape. Implementations are pure: no boto3, no clock."""

    @abstractmethod
    def update(self, key: StateKey, observation: Observation) -> StateUpdate:
        """The one atomic write this observation makes."""

    @abstractmethod
    def read(self, observation: Observation, snapshot: StateSnapshot) -> Reading:
        """What the item (after the write) says about this observation."""

    def prune(
        self, key: StateKey, observation: Observation, snapshot: StateSnapshot
    ) -> StatePrune | None:
        """Members no longer needed; None when a prune is not worth a call yet."""
        del key, observation, snapshot
        return None
