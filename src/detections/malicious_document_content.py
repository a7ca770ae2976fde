"""AWS.SSM.MaliciousDocumentContent: a document whose content does what attackers do.

Ours, beyond the seeds. The rare-creator rule misses a known principal (a compromised CI role,
say) creating a document that downloads and runs a script or reads instance credentials. When
CloudTrail shows the content, we read it (`content_inspection`) and fire on severe evidence.
Documents of every type (Command, Automation `aws:executeScript`, a Session document's shell
profile) and new versions (`UpdateDocument`) are read alike (issue 12 points 1 and 6).
When the same event already fired a rare-creator detection (any document type) or the
new-principal version detection, that finding carries the content evidence and its raised
severity, so this one stays silent rather than alert twice.
"""

from __future__ import annotations

from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    NO_PRIOR,
    AttackRef,
    Detection,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.content_inspection import escalate, hits_context
from detections.rare_document_creator import inspect_document
from detections.resources import created_document_resources
from ssm_detect.execution_calls import UpdateDocumentCall
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateDocumentCall, SsmEvent
from ssm_detect.state import StateSnapshot

CONTENT_CARRIERS = (
    "AWS.SSM.RareCommandDocumentCreator",
    "AWS.SSM.RareAutomationOrSessionDocumentCreator",
    "AWS.SSM.DocumentVersionByNewPrincipal",
)
"""Detections that, when they fire on the same event (earlier in the registry), carry the
content evidence and its raised severity in their own finding: this one then stays silent."""

CLOUD_INSTANCE_METADATA = AttackRef(
    tactic_id="TA0006",
    tactic="credential-access",
    technique_id="T1552.005",
    technique="Unsecured Credentials: Cloud Instance Metadata API",
)
"""What the content inspector's metadata rule finds (shared with the session commands)."""

METADATA = DetectionMetadata(
    id="AWS.SSM.MaliciousDocumentContent",
    title="SSM document content downloads code, opens a shell or steals credentials",
    description=(
        "A created or updated SSM document (of any type) contains commands that responders "
        "treat as malicious: "
        "download-and-execute, a reverse shell, instance-metadata credential access or an "
        "encoded payload (persistence and disabling security tools add to the evidence)."
    ),
    severity=Severity.HIGH,
    attack=(
        CLOUD_ADMINISTRATION_COMMAND,
        CLOUD_INSTANCE_METADATA,
    ),
    seed="ours, after the triage advice of seed 000 (review request_parameters.content)",
    references=(
        "https://attack.mitre.org/techniques/T1651/",
        "https://attack.mitre.org/techniques/T1552/005/",
    ),
    false_positives=(
        "Installers that pipe a vendor script to a shell (curl ... | sh) from a trusted host.",
        "Bootstrap documents that read the instance's own metadata for configuration.",
    ),
    runbook=(
        "Read the matched lines in the finding. Fetch the document (ssm:GetDocument) and any "
        "URL it downloads from a safe host. Find SendCommand calls that ran it and isolate "
        "those instances; rotate credentials of their instance roles if metadata was read."
    ),
)


class MaliciousDocumentContentDetection(Detection):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        del settings
        return isinstance(event.call, CreateDocumentCall | UpdateDocumentCall) and (
            event.record.succeeded
        )

    def evaluate(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> Verdict | None:
        del settings, state
        call = event.call
        if not isinstance(call, CreateDocumentCall | UpdateDocumentCall) or any(
            d in prior for d in CONTENT_CARRIERS
        ):
            return None
        report = inspect_document(call)
        if report is None or not report.severe:
            return None
        severity, reasons = escalate(METADATA.severity, report)
        record = event.record
        return Verdict.of_event(
            event,
            summary=(
                f"{event.principal.key} {_verb(call)} document {call.document_name!s} whose "
                "content "
                f"{'; '.join(dict.fromkeys(h.title for h in report.hits))}"
            ),
            severity=severity,
            severity_reasons=reasons,
            resources=created_document_resources(event, call.document_name),
            context={
                "document_name": call.document_name,
                "document_format": call.request.document_format,
                "document_type": call.document_type,
                "event_name": record.event_name,
                "content_parsed_as": report.parsed_as,
                "content_findings": hits_context(report),
                "content_truncated": report.truncated,
            },
        )


def _verb(call: CreateDocumentCall | UpdateDocumentCall) -> str:
    return "created" if isinstance(call, CreateDocumentCall) else "added a version to"
