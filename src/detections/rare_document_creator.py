"""AWS.SSM.RareCommandDocumentCreator: a Command document created by a rare principal.

Elastic's new-terms rule: a candidate fires when its principal has not created a Command
document within the history window before the event's time. The state is the first-seen block
(`ssm_detect.state.first_seen`) keyed by account + principal (principals are global): its
ordering, arrival-order and bound semantics are the block's.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
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
from detections.stateful import Observed, StatefulDetection, caller_key, counts_caller, sighting
from ssm_detect.execution_calls import UpdateDocumentCall
from ssm_detect.findings import Severity
from ssm_detect.models.ssm_calls import HIDDEN
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateDocumentCall, SsmEvent
from ssm_detect.state.first_seen import FirstSeen, FirstSeenReading, Sighting

CREATIONS = "created"
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


class RareCommandDocumentCreatorDetection(StatefulDetection[Sighting, FirstSeenReading]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        call = event.call
        return (
            isinstance(call, CreateDocumentCall)
            and call.is_command_document
            and event.record.succeeded
            and counts_caller(event, settings)
        )

    def block(self, settings: Settings) -> FirstSeen:
        # `created`: the attribute deployed items already use, so no history is lost.
        return FirstSeen(settings.history_window, keep=MAX_MEMBERS, attribute=CREATIONS)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Sighting] | None:
        del settings, prior
        return Observed(caller_key(event, "creator"), sighting(event))

    def judge(
        self, event: SsmEvent, settings: Settings, reading: FirstSeenReading, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        call = event.call
        if not isinstance(call, CreateDocumentCall) or not reading.first:
            return ()
        summary = (
            f"{event.principal.key} created Command document {call.document_name!s} and had "
            f"created none in the previous {settings.history_window.days} days"
        )
        return (
            document_verdict(
                event,
                call.document_name,
                summary,
                (METADATA.severity, inspect_document(call)),
                _context(call, settings),
            ),
        )


def document_verdict(
    event: SsmEvent,
    document_name: str | None,
    summary: str,
    judged: tuple[Severity, ContentReport | None],
    context: dict[str, Any],
) -> Verdict:
    """The verdict of a one-event document finding (a creation or a new version): the base
    severity raised by what the content inspector found, and its hits in the context."""
    base, report = judged
    severity, reasons = escalate(base, report) if report else (base, ())
    return Verdict.of_event(
        event,
        summary=summary,
        severity=severity,
        severity_reasons=reasons,
        resources=created_document_resources(event, document_name),
        context=context | ({"content_findings": hits_context(report)} if report else {}),
    )


def visible_content(call: CreateDocumentCall | UpdateDocumentCall) -> str | None:
    """The document content (created, or a new version's) when CloudTrail shows it (not
    hidden, not absent), as text."""
    content = call.request.content
    if content is None or content == HIDDEN:
        return None
    # The model bounds how deep `content` (and `tags`) nest, so json.dumps and the finding's
    # serialisation cannot exhaust the recursion limit; deeper levels read DEPTH_MARKER.
    return content if isinstance(content, str) else json.dumps(content)


def content_context(call: CreateDocumentCall | UpdateDocumentCall) -> dict[str, Any]:
    """How a document finding shows the content: up to MAX_CONTENT_CHARS of it and its whole
    length, or that CloudTrail hid it."""
    content = visible_content(call)
    return {
        "content_hidden": content is None,
        "content": content[:MAX_CONTENT_CHARS] if content is not None else None,
        "content_length": len(content) if content is not None else None,
    }


def inspect_document(call: CreateDocumentCall | UpdateDocumentCall) -> ContentReport | None:
    content = visible_content(call)
    return inspect_content(content) if content is not None else None


def _context(call: CreateDocumentCall, settings: Settings) -> dict[str, Any]:
    request = call.request
    truncated = request.truncated_fields
    return {
        "document_name": call.document_name,
        "document_type": call.document_type,
        "document_format": request.document_format,
        "target_type": request.target_type,
        "tags": request.tags,
        **content_context(call),
        "history_window_days": settings.history_window.days,
    } | ({"nesting_truncated": list(truncated)} if truncated else {})
