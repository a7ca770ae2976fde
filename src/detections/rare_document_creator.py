"""AWS.SSM.RareCommandDocumentCreator: a Command document created by a rare principal.

Elastic's new-terms rule: a candidate fires when its principal has not created a Command
document within the history window before the event's time. State per principal is the set of
its creations (`"<epoch>|<eventID>"`); "before" is ordered by (time, event id), so two
creations in the same second processed in order give exactly one first-seen.

A creation that arrives after a later one of the same principal (late delivery) is judged on
what is known when it arrives: it fires if nothing precedes it, even though the later one
fired already. Verdicts are never retracted, so late arrival can add a finding, never lose one;
replays sort by event time and do not meet this.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, ClassVar

from detections import members
from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    NO_PRIOR,
    Detection,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.content_inspection import (
    ContentReport,
    escalate,
    hits_context,
    inspect_content,
)
from detections.resources import created_document_resources
from ssm_detect.findings import Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.models.ssm_calls import HIDDEN
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateDocumentCall, SsmEvent
from ssm_detect.state import StatePrune, StateSnapshot, StateUpdate

CREATIONS = "created"
# A creation can arrive this late (CloudTrail delivery, replays of overlapping exports) and still
# be judged against the full window; members older than window + lateness are dropped.
LATENESS = timedelta(days=1)
# Past this many recent creations a principal is plainly not rare; older members add nothing.
MAX_MEMBERS = 64
# SSM accepts documents up to 64 KB: the finding keeps all of a real one, so a notification can
# show the lines around a payload placed after padding; `content_length` says what was recorded.
MAX_CONTENT_CHARS = 64 * 1024

METADATA = DetectionMetadata(
    id="AWS.SSM.RareCommandDocumentCreator",
    title="SSM Command document created by a rare principal",
    description=(
        "A principal that has not created an SSM Command document within the history window "
        "created one. Attackers create Command documents to run their own scripts on managed "
        "instances with SendCommand."
    ),
    severity=Severity.MEDIUM,
    attack=(CLOUD_ADMINISTRATION_COMMAND,),
    seed="Elastic new-terms rule 'AWS SSM Command Document Created by Rare User'",
    references=(
        "https://github.com/elastic/detection-rules (rules/integrations/aws/"
        "execution_ssm_command_document_created_by_rare_user.toml)",
        "https://attack.mitre.org/techniques/T1651/",
    ),
    false_positives=(
        "A new automation role or engineer creating its first documents.",
        "Infrastructure-as-code deployments that create documents under a fresh role.",
    ),
    runbook=(
        "Review the document content (ssm:GetDocument) for download-and-execute, reverse shells "
        "or credential access. Look for SendCommand calls that run this document and the "
        "instances they reached. Confirm the principal's owner expected it; restrict "
        "ssm:CreateDocument to trusted roles."
    ),
)


class RareCommandDocumentCreatorDetection(Detection):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        call = event.call
        return (
            isinstance(call, CreateDocumentCall)
            and call.is_command_document
            and event.record.succeeded
            and (settings.include_service_principals or not event.principal.is_aws_service)
        )

    def state_update(
        self, event: SsmEvent, settings: Settings, prior: Prior = NO_PRIOR
    ) -> StateUpdate:
        del prior
        member = members.encode(to_epoch(event.record.event_time), event.event_id)
        return StateUpdate(
            key=_state_key(event),
            add={CREATIONS: frozenset({member})},
            retention=settings.history_window + LATENESS,
        )

    def evaluate(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> Verdict | None:
        del prior
        call = event.call
        if not isinstance(call, CreateDocumentCall):
            return None
        now = to_epoch(event.record.event_time)
        oldest = now - int(settings.history_window.total_seconds())
        own = (now, event.event_id)
        earlier = [
            created
            for created in members.decode_all(state.get(CREATIONS, ()))
            if oldest <= created[0] and created < own
        ]
        if earlier:
            return None
        record = event.record
        report = inspect_document(call)
        severity, reasons = (
            escalate(METADATA.severity, report) if report else (METADATA.severity, ())
        )
        return Verdict(
            summary=(
                f"{event.principal.key} created Command document {call.document_name!s} and had "
                f"created none in the previous {settings.history_window.days} days"
            ),
            decisive_event_id=event.event_id,
            event_ids=(event.event_id,),
            first_seen=record.event_time,
            last_seen=record.event_time,
            severity=severity,
            severity_reasons=reasons,
            resources=created_document_resources(event, call.document_name),
            context=_context(call, settings)
            | ({"content_findings": hits_context(report)} if report else {}),
        )

    def state_prune(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot
    ) -> StatePrune | None:
        del settings
        held = state.get(CREATIONS, frozenset())
        if len(held) <= MAX_MEMBERS:
            return None
        newest = sorted(held)[-MAX_MEMBERS:]
        return StatePrune(key=_state_key(event), remove={CREATIONS: held - frozenset(newest)})


def _state_key(event: SsmEvent) -> str:
    return f"creator#{event.account_id}#{event.principal.key}"


def visible_content(call: CreateDocumentCall) -> str | None:
    """The document content when CloudTrail shows it (not hidden, not absent), as text."""
    content = call.request.content
    if content is None or content == HIDDEN:
        return None
    # The model bounds how deep `content` (and `tags`) nest, so json.dumps and the finding's
    # serialisation cannot exhaust the recursion limit; deeper levels read DEPTH_MARKER.
    return content if isinstance(content, str) else json.dumps(content)


def inspect_document(call: CreateDocumentCall) -> ContentReport | None:
    content = visible_content(call)
    return inspect_content(content) if content is not None else None


def _context(call: CreateDocumentCall, settings: Settings) -> dict[str, Any]:
    request = call.request
    content = visible_content(call)
    truncated = request.truncated_fields
    return {
        "document_name": call.document_name,
        "document_type": call.document_type,
        "document_format": request.document_format,
        "target_type": request.target_type,
        "tags": request.tags,
        "content_hidden": content is None,
        "content": content[:MAX_CONTENT_CHARS] if content is not None else None,
        "content_length": len(content) if content is not None else None,
        "history_window_days": settings.history_window.days,
    } | ({"nesting_truncated": list(truncated)} if truncated else {})
