"""The pipeline: one SSM event through every detection, with one state update per detection.

Shared by the Lambda handler and the local replay, so both decide identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from detections.base import Detection, DetectionMetadata, Prior, Verdict
from detections.evidence import Actor
from ssm_detect.findings import Finding, finding_id
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state import StateStore
from ssm_detect.state.base import StateSnapshot


@dataclass
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    allowlisted: list[str] = field(default_factory=list)
    """Detection ids that would have looked at the event but the allowlist excluded."""


class Pipeline:
    def __init__(
        self, detections: Sequence[Detection], store: StateStore, settings: Settings
    ) -> None:
        self.detections = tuple(detections)
        self.store = store
        self.settings = settings

    def process(self, event: SsmEvent) -> Outcome:
        """Run every detection; store errors propagate so the caller's retry engages."""
        outcome = Outcome()
        prior: dict[str, Verdict] = {}
        for detection in self.detections:
            metadata = detection.metadata
            if not detection.applies_to(event, self.settings):
                continue
            if self.settings.allowlist.allows(metadata.id, event.principal, _document(event)):
                outcome.allowlisted.append(metadata.id)
                continue
            verdicts = self._decide(detection, event, prior)
            if verdicts:
                prior[metadata.id] = verdicts[0]
            outcome.findings.extend(
                build_finding(metadata, verdict, event, self.settings) for verdict in verdicts
            )
        return outcome

    def _decide(self, detection: Detection, event: SsmEvent, prior: Prior) -> tuple[Verdict, ...]:
        update = detection.state_update(event, self.settings, prior)
        state: StateSnapshot = self.store.apply(update) if update else {}
        verdicts = detection.evaluate_all(event, self.settings, state, prior)
        if update:
            prune = detection.state_prune(event, self.settings, state, prior)
            if prune:
                self.store.prune(prune)
        return verdicts


def build_finding(
    metadata: DetectionMetadata, verdict: Verdict, event: SsmEvent, settings: Settings
) -> Finding:
    subject = verdict.subject or Actor.of(event)
    severity, reasons = verdict.severity, verdict.severity_reasons
    if settings.is_automation(subject.principal()):
        severity = severity.lowered(2)
        reasons = (*reasons, "lowered two steps: known automation (AUTOMATION_PRINCIPALS_JSON)")
    override = settings.severity_overrides.get(metadata.id)
    if override is not None and override != severity:
        severity, reasons = override, (*reasons, f"set to {override} by configuration")
    principal = subject.principal_ref()
    return Finding(
        id=finding_id(metadata.id, subject.account_id, principal.key, verdict.decisive_event_id),
        detection_id=metadata.id,
        title=metadata.title,
        description=f"{metadata.description} {verdict.summary}.",
        severity=severity,
        severity_reasons=reasons,
        account_id=subject.account_id,
        region=subject.region,
        principal=principal,
        source_ip=subject.source_ip,
        user_agent=subject.user_agent,
        event_ids=verdict.event_ids,
        first_seen=verdict.first_seen,
        last_seen=verdict.last_seen,
        resources=verdict.resources,
        context=dict(verdict.context)
        | ({"malformed_fields": list(event.malformed_fields)} if event.malformed_fields else {}),
        mitre=metadata.mitre,
        references=metadata.references,
        runbook=metadata.runbook,
        api_call=verdict.api_call or event.record.event_name,
    )


def _document(event: SsmEvent) -> str | None:
    call = event.call
    return call.document_name if call is not None else None
