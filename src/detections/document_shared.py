"""AWS.SSM.DocumentShared: a document shared with every AWS account, or with an account outside
the organisation.

Ours (issue 12 point 2). A shared Command or Automation document hands its code, and any
secrets or internal hostnames in it, to the accounts it is shared with; shared publicly
(`accountIdsToAdd: ["All"]`) anyone can read and run it. It is also how an attacker stages a
document in a victim account's view (`SendCommand` of another account's document ARN).
HIGH when public; MEDIUM when an added account is outside `TRUSTED_ACCOUNTS_JSON` (empty: any
account other than the document's own). Removals never fire.
"""

from __future__ import annotations

from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    AttackRef,
    CallDetection,
    DetectionMetadata,
    Verdict,
)
from detections.execution_paths import base_context, document_and_principal
from ssm_detect.execution_calls import ModifyDocumentPermissionCall
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent

TRANSFER_TO_CLOUD_ACCOUNT = AttackRef(
    tactic_id="TA0010",
    tactic="exfiltration",
    technique_id="T1537",
    technique="Transfer Data to Cloud Account",
)

METADATA = DetectionMetadata(
    id="AWS.SSM.DocumentShared",
    title="SSM document shared publicly or with an account outside the organisation",
    description=(
        "A principal called ssm:ModifyDocumentPermission to share an SSM document with every "
        "AWS account (public) or with an account outside the configured trusted accounts."
    ),
    severity=Severity.MEDIUM,
    # T1651 too: a shared document is run by SendCommand in the accounts it reaches.
    attack=(TRANSFER_TO_CLOUD_ACCOUNT, CLOUD_ADMINISTRATION_COMMAND),
    seed="ours (issue 12 point 2); AWS Security Hub control SSM.4 (documents should not be public)",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-ssm-sharing.html",
        "https://docs.aws.amazon.com/securityhub/latest/userguide/ssm-controls.html",
        "https://attack.mitre.org/techniques/T1537/",
    ),
    false_positives=(
        "Sharing a document with a partner or a new account of the organisation not yet listed "
        "in TRUSTED_ACCOUNTS_JSON.",
    ),
    runbook=(
        "Read the document (ssm:GetDocument) for secrets and code. If the share is not "
        "expected, remove it (ssm:ModifyDocumentPermission --account-ids-to-remove), turn the "
        "public-sharing block back on, and review who else the principal shared with."
    ),
)


class DocumentSharedDetection(CallDetection[ModifyDocumentPermissionCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = ModifyDocumentPermissionCall

    def judge(
        self, event: SsmEvent, call: ModifyDocumentPermissionCall, settings: Settings
    ) -> Verdict | None:
        request = call.request
        outside = _outside(request.accounts_added, event.account_id, settings)
        if not request.made_public and not outside:
            return None
        severity = Severity.HIGH if request.made_public else METADATA.severity
        reasons = ("raised to HIGH: shared with every AWS account",) if request.made_public else ()
        whom = "every AWS account" if request.made_public else ", ".join(outside)
        context = base_context(event, call.malformed_fields)
        context.update(
            {
                "document_name": call.document_name,
                "public": request.made_public,
                "accounts_outside": list(outside),
                "accounts_added": list(request.accounts_added),
                "shared_document_version": request.shared_document_version,
            }
        )
        return Verdict.of_event(
            event,
            summary=f"{event.principal.key} shared document {call.document_name} with {whom}",
            severity=severity,
            severity_reasons=reasons,
            resources=document_and_principal(event, call.document_name),
            context=context,
        )


def _outside(accounts: tuple[str, ...], own: str, settings: Settings) -> tuple[str, ...]:
    trusted = settings.trusted_accounts | {own}
    return tuple(dict.fromkeys(a for a in accounts if a not in trusted))
