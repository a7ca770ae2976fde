"""AWS.SSM.SessionLoggingDisabled: Session Manager preferences changed to stop logging sessions.

Ours (issue 12 point 1). Session Manager reads its regional preferences from the Session
document `SSM-SessionManagerRunShell`: where session transcripts go (`s3BucketName`,
`cloudWatchLogGroupName`) and whether they are encrypted. An attacker who empties both, or
turns encryption of the logs off, can then open shells that leave no transcript.
`UpdateDocument` (and the `CreateDocument` that makes the preferences the first time) of that
document is judged on its visible content: no log destination, or log encryption off -> HIGH.
CloudTrail usually hides document content; then the change itself is reported at MEDIUM with
the reason, since the preferences change rarely. A shell profile in the preferences is judged
by AWS.SSM.MaliciousDocumentContent, which reads documents of every type.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    AttackRef,
    CallDetection,
    DetectionMetadata,
    Verdict,
)
from detections.content_inspection import parse_document
from detections.execution_paths import base_context, document_and_principal
from ssm_detect.execution_calls import UpdateDocumentCall
from ssm_detect.findings import Severity
from ssm_detect.models.ssm_calls import HIDDEN
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateDocumentCall, SsmEvent

PREFERENCES_DOCUMENT = "SSM-SessionManagerRunShell"
DISABLE_CLOUD_LOGS = AttackRef(
    tactic_id="TA0005",
    tactic="defense-evasion",
    technique_id="T1562.008",
    technique="Impair Defenses: Disable or Modify Cloud Logs",
)

METADATA = DetectionMetadata(
    id="AWS.SSM.SessionLoggingDisabled",
    title="Session Manager logging turned off in the session preferences",
    description=(
        "A principal changed the Session Manager preferences document "
        "(SSM-SessionManagerRunShell) so that session transcripts are no longer sent to S3 or "
        "CloudWatch Logs, or are no longer encrypted."
    ),
    severity=Severity.HIGH,
    # T1651 too: what the missing logs would have shown is shell through Session Manager.
    attack=(DISABLE_CLOUD_LOGS, CLOUD_ADMINISTRATION_COMMAND),
    seed="ours (issue 12 point 1)",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-logging.html",
        "https://attack.mitre.org/techniques/T1562/008/",
    ),
    false_positives=(
        "A planned move of session logs to another bucket or log group, done in two steps.",
    ),
    runbook=(
        "Read the preferences (ssm:GetDocument SSM-SessionManagerRunShell) and restore the log "
        "destinations. List sessions started since (ssm:DescribeSessions) and treat them as "
        "unlogged; review the principal's other calls."
    ),
)


class SessionLoggingDisabledDetection(CallDetection[UpdateDocumentCall | CreateDocumentCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type | UnionType] = UpdateDocumentCall | CreateDocumentCall

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        """Successful writes of the preferences document only."""
        call = self.call_of(event)
        return (
            super().applies_to(event, settings)
            and call is not None
            and call.document_name == PREFERENCES_DOCUMENT
        )

    def judge(
        self, event: SsmEvent, call: UpdateDocumentCall | CreateDocumentCall, settings: Settings
    ) -> Verdict | None:
        del settings
        malformed = call.malformed_fields if isinstance(call, UpdateDocumentCall) else ()
        context = base_context(event, malformed)
        judged = _judge(call.request.content, context)
        if judged is None:
            return None
        severity, reasons = judged
        record = event.record
        return Verdict.of_event(
            event,
            summary=(
                f"{event.principal.key} changed the Session Manager preferences in "
                f"{record.aws_region}: {'; '.join(reasons)}"
            ),
            severity=severity,
            severity_reasons=tuple(reasons),
            resources=document_and_principal(event, PREFERENCES_DOCUMENT),
            context=context,
        )


def _judge(content: object, context: dict[str, Any]) -> tuple[Severity, list[str]] | None:
    """Severity and reasons, or None when logging stays on and encrypted."""
    if content is None or content == HIDDEN:
        context["content"] = HIDDEN
        return Severity.MEDIUM, ["content hidden by CloudTrail: logging may have been changed"]
    document = parse_document(content) if isinstance(content, str) else content
    if not isinstance(document, dict):
        return Severity.MEDIUM, ["content does not parse: logging may have been changed"]
    inputs = document.get("inputs")
    inputs = inputs if isinstance(inputs, dict) else {}
    reasons = _logging_gaps(inputs)
    context["preferences"] = {k: inputs.get(k) for k in _SHOWN if k in inputs}
    return (Severity.HIGH, reasons) if reasons else None


_SHOWN = (
    "s3BucketName",
    "s3EncryptionEnabled",
    "cloudWatchLogGroupName",
    "cloudWatchEncryptionEnabled",
    "cloudWatchStreamingEnabled",
    "kmsKeyId",
)


def _logging_gaps(inputs: dict[str, Any]) -> list[str]:
    bucket = str(inputs.get("s3BucketName") or "").strip()
    group = str(inputs.get("cloudWatchLogGroupName") or "").strip()
    if not bucket and not group:
        return ["no S3 bucket and no CloudWatch log group: sessions are not logged"]
    gaps = []
    if bucket and _off(inputs.get("s3EncryptionEnabled")):
        gaps.append("S3 session logs no longer encrypted")
    if group and _off(inputs.get("cloudWatchEncryptionEnabled")):
        gaps.append("CloudWatch session logs no longer encrypted")
    return gaps


def _off(value: object) -> bool:
    return value is False or str(value).strip().lower() == "false"
