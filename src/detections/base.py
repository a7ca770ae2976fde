"""What a detection is: metadata, and a pure decision in two steps around one state update.

1. `applies_to` picks candidate events; `state_update` says what the detection wants remembered.
2. The pipeline applies that update atomically and hands back what the store holds afterwards.
3. `evaluate` decides on that snapshot; `state_prune` may ask to drop members it no longer needs.

Detections run in registry order, and each sees the verdicts earlier ones reached on the same
event (`prior`, by detection id): the chain detection needs to know that a creation was judged
rare, or an execution a fan-out, without recomputing either.

Detections import no boto3, read no clock and no environment: the same code decides in Lambda,
in local replay and in tests, and a retried event gets the same verdict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import UnionType
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from detections.evidence import Actor, moment
from ssm_detect.findings import MitreTag, Resource, Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state import StatePrune, StateSnapshot, StateUpdate
from ssm_detect.state.correlate import Pair
from ssm_detect.state.distinct_window import Window

EMPTY_STATE: StateSnapshot = {}


class AttackRef(BaseModel):
    """One ATT&CK tactic/technique pair, ids as MITRE writes them (TA0002, T1651)."""

    model_config = ConfigDict(frozen=True)

    tactic_id: str = Field(pattern=r"^TA\d{4}$")
    tactic: str = Field(pattern=r"^[a-z-]+$")
    technique_id: str = Field(pattern=r"^T\d{4}(\.\d{3})?$")
    technique: str


CLOUD_ADMINISTRATION_COMMAND = AttackRef(
    tactic_id="TA0002",
    tactic="execution",
    technique_id="T1651",
    technique="Cloud Administration Command",
)
"""The technique every detection here is about (MITRE ATT&CK T1651)."""


class DetectionMetadata(BaseModel):
    """Sigma's vocabulary: title, description, references, false positives, level, tags."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^AWS\.SSM\.[A-Za-z]+$")
    title: str = Field(min_length=5, max_length=120)
    description: str = Field(min_length=20)
    severity: Severity
    attack: tuple[AttackRef, ...] = Field(min_length=1)
    seed: str
    """The public rule this detection follows, by name and id."""
    references: tuple[str, ...] = Field(min_length=1)
    false_positives: tuple[str, ...] = Field(min_length=1)
    runbook: str = Field(min_length=20)

    @property
    def tags(self) -> tuple[str, ...]:
        """Sigma-style tags (`attack.execution`, `attack.t1651`)."""
        tactics = (f"attack.{ref.tactic}" for ref in self.attack)
        techniques = (f"attack.{ref.technique_id.lower()}" for ref in self.attack)
        return tuple(dict.fromkeys((*tactics, *techniques)))

    @property
    def mitre(self) -> tuple[MitreTag, ...]:
        return tuple(MitreTag(tactic=r.tactic_id, technique=r.technique_id) for r in self.attack)


@dataclass(frozen=True)
class Verdict:
    """A detection fired: everything the finding needs that the event alone does not say."""

    summary: str
    decisive_event_id: str
    event_ids: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    severity: Severity
    severity_reasons: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    subject: Actor | None = None
    """Whose finding it is when not the event's own caller: a chain judged on its creation is
    still the executor's (id, principal, account and region), whichever half arrived second."""
    api_call: str | None = None
    """The call the finding is about when not the event's own (a run judged when its
    configuration arrives is still the SendCommand's)."""

    @classmethod
    def of_event(
        cls,
        event: SsmEvent,
        *,
        summary: str,
        severity: Severity,
        severity_reasons: tuple[str, ...] = (),
        resources: tuple[Resource, ...] = (),
        context: Mapping[str, Any],
    ) -> Verdict:
        """A verdict one event decides alone: it is the decisive and only event, and its time
        is both first and last seen."""
        at = event.record.event_time
        return cls(
            summary=summary,
            decisive_event_id=event.event_id,
            event_ids=(event.event_id,),
            first_seen=at,
            last_seen=at,
            severity=severity,
            severity_reasons=severity_reasons,
            resources=resources,
            context=context,
        )

    @classmethod
    def of_window(
        cls,
        window: Window,
        *,
        summary: str,
        severity: Severity,
        severity_reasons: tuple[str, ...],
        resources: tuple[Resource, ...],
        context: Mapping[str, Any],
    ) -> Verdict:
        """A verdict a distinct-in-window reading decides: its closing event is the decisive
        one, and its ids and times are the window's, never the event being processed (a late
        event may complete a window it does not close), so every arrival order says the same."""
        times = [e.epoch for e in window.events]
        return cls(
            summary=summary,
            decisive_event_id=window.end.event_id,
            event_ids=tuple(e.event_id for e in window.events),
            first_seen=moment(min(times)),
            last_seen=moment(max(times)),
            severity=severity,
            severity_reasons=severity_reasons,
            resources=resources,
            context=context,
        )

    @classmethod
    def of_pair(
        cls,
        pair: Pair,
        *,
        summary: str,
        severity: Severity,
        severity_reasons: tuple[str, ...],
        resources: tuple[Resource, ...],
        context: Mapping[str, Any],
        subject: Actor,
        api_call: str | None = None,
    ) -> Verdict:
        """A verdict a correlation decides: its second half is the decisive event, and the ids
        and times are both halves', never the event being processed, so either arrival order
        says the same."""
        return cls(
            summary=summary,
            decisive_event_id=pair.second.event_id,
            event_ids=(pair.first.event_id, pair.second.event_id),
            first_seen=moment(pair.first.epoch),
            last_seen=moment(pair.second.epoch),
            severity=severity,
            severity_reasons=severity_reasons,
            resources=resources,
            context=context,
            subject=subject,
            api_call=api_call,
        )


Prior = Mapping[str, Verdict]
"""Verdicts of the detections that ran before on the same event, by detection id."""
NO_PRIOR: Prior = {}


class Detection(ABC):
    metadata: ClassVar[DetectionMetadata]

    @abstractmethod
    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        """Whether the event is a candidate (before any state is consulted)."""

    def state_update(
        self, event: SsmEvent, settings: Settings, prior: Prior = NO_PRIOR
    ) -> StateUpdate | None:
        """The state this candidate adds; None for stateless detections."""
        del event, settings, prior
        return None

    @abstractmethod
    def evaluate(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> Verdict | None:
        """Decide on a candidate, given the state after its own update."""

    def evaluate_all(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> tuple[Verdict, ...]:
        """Every verdict the event reaches. One at most, except for a detection whose late
        event can complete several decisions at once (the fan-out windows)."""
        verdict = self.evaluate(event, settings, state, prior)
        return (verdict,) if verdict is not None else ()

    def state_prune(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> StatePrune | None:
        """Members the detection no longer needs; None when pruning is not worth a call yet."""
        del event, settings, state, prior
        return None


CallT = TypeVar("CallT")


class OfCall(Generic[CallT]):
    """Candidates are the successful calls of one type (`call_type`, the model `SsmEvent.call`
    holds for it). A mixin, so that stateful detections can share it; put it before the
    detection base class so that its `applies_to` is the one used."""

    call_type: ClassVar[type | UnionType]
    """The call model this detection judges (or a union of models, `A | B`); `CallT` says the
    same to the type checker (a ClassVar cannot name a type variable)."""

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        del settings
        return self.call_of(event) is not None and event.record.succeeded

    def call_of(self, event: SsmEvent) -> CallT | None:
        """The event's call, narrowed to this detection's call type (None for any other)."""
        call = event.call
        return cast("CallT", call) if isinstance(call, self.call_type) else None


class CallDetection(OfCall[CallT], Detection):
    """A stateless detection of one successful call type: only the judgement is its own."""

    @abstractmethod
    def judge(self, event: SsmEvent, call: CallT, settings: Settings) -> Verdict | None:
        """The verdict on one successful call of `call_type` (pure)."""

    def evaluate(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> Verdict | None:
        del state, prior
        call = self.call_of(event)
        return None if call is None else self.judge(event, call, settings)
