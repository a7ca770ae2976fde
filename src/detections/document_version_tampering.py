"""AWS.SSM.DocumentVersionByNewPrincipal: a new version of a document by a principal new to it.

Ours (issue 12 point 1), Elastic's new-terms idea applied to document versions. An attacker who
knows that document creation is watched adds a version to a document the defenders already
trust and run (then makes it the default, or runs `$LATEST`). `UpdateDocument` is judged on who
makes it: a principal that has neither created nor changed THIS document (account + region +
name) within the history window. The state is the first-seen block
(`ssm_detect.state.first_seen`) keyed by document and principal; every successful
`CreateDocument` and `UpdateDocument` of a customer document is a sighting, so the owner who
created a document, or who changes it regularly, is never new to it (benign look-alikes:
`events/version_owner_*`, `events/version_ci_*`). Only `UpdateDocument` fires.

The key is `changer#<account>#<region>#<document>#<principal>`; when a (hostile) 1 KB document
name and a 1 KB principal would pass DynamoDB's 2 KB partition-key bound, the principal is
written as its SHA-256 digest (`sha256:` + 32 hex characters) instead.

Visible content is inspected as a creation's is (the severity model: HIGH for a severe hit,
CRITICAL with another kind of evidence). The Session Manager preferences document
(`SSM-SessionManagerRunShell`) is left to its own detections (SessionLoggingDisabled for its
logging, MaliciousDocumentContent for its shell profile). A flagged version is a first half of
AWS.SSM.CreatedDocumentExecuted's chain.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.document_chain import customer_document, state_name
from detections.rare_document_creator import (
    content_context,
    document_verdict,
    inspect_document,
)
from detections.resources import regional_name
from detections.stateful import Observed, StatefulDetection, counts_caller, sighting
from ssm_detect.execution_calls import UpdateDocumentCall
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateDocumentCall, SsmEvent
from ssm_detect.state.block import StateKey
from ssm_detect.state.first_seen import FirstSeen, FirstSeenReading, Sighting

STATE_KIND = "changer"
SIGHTINGS = "changed"
MAX_MEMBERS = 64
PREFERENCES_DOCUMENT = "SSM-SessionManagerRunShell"
_DIGEST_CHARS = 32
MAX_KEY_BYTES = 2_048
"""DynamoDB's bound on a partition key."""

METADATA = DetectionMetadata(
    id="AWS.SSM.DocumentVersionByNewPrincipal",
    title="New version of an SSM document added by a principal new to that document",
    description=(
        "A principal that has neither created nor changed this SSM document within the history "
        "window added a new version to it. Attackers add a malicious version to a document the "
        "defenders already trust and run, then make it the default or run $LATEST."
    ),
    severity=Severity.MEDIUM,
    attack=(CLOUD_ADMINISTRATION_COMMAND,),
    seed="ours (issue 12 point 1), after Elastic's new-terms rule (seed 000) on versions",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateDocument.html",
        "https://attack.mitre.org/techniques/T1651/",
    ),
    false_positives=(
        "An engineer taking over a document, or changing it for the first time in a while.",
        "A new deployment role publishing versions of documents an older role created.",
    ),
    runbook=(
        "Compare the new version with the previous one (ssm:GetDocument with both versions), "
        "check whether it was made the default (UpdateDocumentDefaultVersion) or run, and ask "
        "the document's owner whether the change was expected; restore the previous default "
        "version if not."
    ),
)


class DocumentVersionByNewPrincipalDetection(StatefulDetection[Sighting, FirstSeenReading]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        call = event.call
        return (
            isinstance(call, CreateDocumentCall | UpdateDocumentCall)
            and event.record.succeeded
            and customer_document(call.document_name) not in (None, PREFERENCES_DOCUMENT)
            and counts_caller(event, settings)
        )

    def block(self, settings: Settings) -> FirstSeen:
        return FirstSeen(settings.history_window, keep=MAX_MEMBERS, attribute=SIGHTINGS)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Sighting] | None:
        del settings, prior
        call = event.call
        if not isinstance(call, CreateDocumentCall | UpdateDocumentCall) or not call.document_name:
            return None
        account, region, name = regional_name(
            call.document_name, event.record.aws_region, event.account_id
        )
        key = changer_key(account, region, state_name(name), event.principal.key)
        return Observed(key, sighting(event))

    def judge(
        self, event: SsmEvent, settings: Settings, reading: FirstSeenReading, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        call = event.call
        if not isinstance(call, UpdateDocumentCall) or not reading.first:
            return ()
        days = settings.history_window.days
        summary = (
            f"{event.principal.key} added version {call.new_version or '?'} to document "
            f"{call.document_name!s} and had neither created nor changed it in the previous "
            f"{days} days"
        )
        return (
            document_verdict(
                event,
                call.document_name,
                summary,
                (METADATA.severity, inspect_document(call)),
                _context(call, days),
            ),
        )


def changer_key(account: str, region: str, document: str, principal: str) -> StateKey:
    """`changer#<account>#<region>#<document>#<principal>`; the principal as a digest when the
    whole would pass DynamoDB's partition-key bound (only hostile names and principals do)."""
    key = StateKey(STATE_KIND, account, f"{document}#{principal}", region=region)
    if len(str(key).encode()) <= MAX_KEY_BYTES:
        return key
    digest = hashlib.sha256(principal.encode()).hexdigest()[:_DIGEST_CHARS]
    return StateKey(STATE_KIND, account, f"{document}#sha256:{digest}", region=region)


def _context(call: UpdateDocumentCall, days: int) -> dict[str, Any]:
    request = call.request
    described = call.response.document_description
    return {
        "document_name": call.document_name,
        "document_type": call.document_type,
        "new_version": call.new_version,
        "based_on_version": request.document_version,
        "default_version": described.default_version if described else None,
        "version_name": request.version_name,
        "document_format": request.document_format,
        **content_context(call),
        "history_window_days": days,
    } | ({"malformed_fields": list(call.malformed_fields)} if call.malformed_fields else {})
