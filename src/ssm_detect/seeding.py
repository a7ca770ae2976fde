"""Seed the detections' history from past CloudTrail, so a new deployment starts informed.

With an empty store every principal is new: every operator's next CreateDocument would raise
RareCommandDocumentCreator once. Seeding runs historical SSM events through the detections'
*state updates only*: the same `applies_to`, allowlist and `state_update` the pipeline uses,
applied with the store's atomic union, and the same pruning. No detection evaluates, so there
are no findings, no ledger entries, nothing notified.

No prior verdicts are passed to `state_update`, so state that exists only because of a verdict
is not written (the chain detection records a creation only when the rare-creator detection
flagged it): history says "seen before", never "flagged". Updates are unions, so seeding twice,
or seeding events the live function also processes, changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from detections.base import NO_PRIOR, Detection
from ssm_detect.pipeline import Pipeline
from ssm_detect.ssm_event import SsmEvent


@dataclass
class SeedReport:
    events: int = 0
    """SSM events read (once each, in event-time order), whether or not a detection keeps
    state for them."""
    updates: int = 0
    """State updates written (one per event per detection that keeps state for it)."""
    principals: set[tuple[str, str]] = field(default_factory=set)
    """(account, principal key) of every event that wrote state."""
    keys: dict[str, set[str]] = field(default_factory=dict)
    """State items written, by detection id."""

    def record(self, detection: Detection, event: SsmEvent, key: str) -> None:
        self.updates += 1
        self.principals.add((event.account_id, event.principal.key))
        self.keys.setdefault(detection.metadata.id, set()).add(key)

    @property
    def items(self) -> Counter[str]:
        """How many distinct state items each detection wrote."""
        return Counter({detection: len(keys) for detection, keys in self.keys.items()})


def seed_history(events: Iterable[SsmEvent], pipeline: Pipeline) -> SeedReport:
    """Apply every event's state updates to the pipeline's store; decide nothing.

    Feed events in event-time order (Intake.events does): pruning keeps what is recent relative
    to the newest event seen, as it does live."""
    report = SeedReport()
    for event in events:
        report.events += 1
        for detection in pipeline.detections:
            key = apply_state_update(detection, event, pipeline)
            if key is not None:
                report.record(detection, event, key)
    return report


def apply_state_update(detection: Detection, event: SsmEvent, pipeline: Pipeline) -> str | None:
    """One detection's update for one event, as the pipeline would apply it; the item's key,
    or None when the detection does not look at the event or keeps nothing for it."""
    settings = pipeline.settings
    if not detection.applies_to(event, settings):
        return None
    document = event.call.document_name if event.call is not None else None
    if settings.allowlist.allows(detection.metadata.id, event.principal, document):
        return None  # live processing writes nothing for allowlisted events either
    update = detection.state_update(event, settings, NO_PRIOR)
    if update is None:
        return None
    state = pipeline.store.apply(update)
    prune = detection.state_prune(event, settings, state)
    if prune is not None:
        pipeline.store.prune(prune)
    return update.key
