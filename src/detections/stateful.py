"""How a detection uses a shared state block: declare it, observe, judge.

A stateful detection never builds state machinery of its own. It says:
- `block(settings)`: which block (`FirstSeen`, `DistinctInWindow`, `CorrelateThroughResource`,
  from `ssm_detect.state`) with which window and bounds;
- `observe(event, settings, prior)`: the key (account, region for regional resources, principal
  or resource name) and what this event contributes (`Observed`), or None when the event adds
  nothing (then no state call is made);
- `judge(event, settings, reading, prior)`: its pure decision on the block's reading.

The pipeline-facing methods (`state_update`, `evaluate_all`, `state_prune`) are implemented here
once, so every stateful detection makes exactly one atomic state round trip per event (plus, now
and then, a batched prune) and decides on what the store holds after its own write. An event
whose account or caller could not be read (`SsmEvent.unkeyed_reason`: fail toward detection)
is not observed: stateless detections still judge it, and its log line says why these skipped.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

from detections.base import NO_PRIOR, Detection, Prior, Verdict
from ssm_detect.models.event_time import to_epoch
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state import StatePrune, StateSnapshot, StateUpdate
from ssm_detect.state.block import Block, StateKey
from ssm_detect.state.first_seen import Sighting

Observation = TypeVar("Observation")
Reading = TypeVar("Reading")


@dataclass(frozen=True)
class Observed(Generic[Observation]):
    key: StateKey
    observation: Observation


def counts_caller(event: SsmEvent, settings: Settings) -> bool:
    """Whether the caller's calls feed a detection's state: a person's always, an AWS service
    principal's (State Manager, Automation) only when the settings include them."""
    return settings.include_service_principals or not event.principal.is_aws_service


def caller_key(event: SsmEvent, kind: str) -> StateKey:
    """The key of the caller's own state of `kind`: account and principal, no region
    (principals are global, so their calls in every region count together)."""
    return StateKey(kind, event.account_id, event.principal.key)


def sighting(event: SsmEvent) -> Sighting:
    """The event as a first-seen block remembers it: its time and id."""
    return Sighting(to_epoch(event.record.event_time), event.event_id)


class StatefulDetection(Detection, Generic[Observation, Reading]):
    @abstractmethod
    def block(self, settings: Settings) -> Block[Observation, Reading]:
        """The shared block this detection keeps its state in."""

    @abstractmethod
    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Observation] | None:
        """Key and contribution of a candidate event; None: nothing to remember or read."""

    @abstractmethod
    def judge(
        self, event: SsmEvent, settings: Settings, reading: Reading, prior: Prior
    ) -> tuple[Verdict, ...]:
        """The verdicts the reading supports (pure)."""

    def observed(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Observation] | None:
        """`observe`, for events whose key parts are readable."""
        if event.unkeyed_reason is not None:
            return None
        return self.observe(event, settings, prior)

    def state_update(
        self, event: SsmEvent, settings: Settings, prior: Prior = NO_PRIOR
    ) -> StateUpdate | None:
        observed = self.observed(event, settings, prior)
        if observed is None:
            return None
        return self.block(settings).update(observed.key, observed.observation)

    def evaluate(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> Verdict | None:
        verdicts = self.evaluate_all(event, settings, state, prior)
        return verdicts[0] if verdicts else None

    def evaluate_all(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> tuple[Verdict, ...]:
        observed = self.observed(event, settings, prior)
        if observed is None:
            return ()
        reading = self.block(settings).read(observed.observation, state)
        return self.judge(event, settings, reading, prior)

    def state_prune(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> StatePrune | None:
        observed = self.observed(event, settings, prior)
        if observed is None:
            return None
        return self.block(settings).prune(observed.key, observed.observation, state)
