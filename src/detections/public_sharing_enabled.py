"""AWS.SSM.PublicSharingBlockDisabled: the account-wide block on public document sharing lifted.

Ours (issue 12 point 2). `UpdateServiceSetting` of `/ssm/documents/console/public-sharing-
permission` to `Enable` is the step before sharing a document with the world; AWS turns the
block on by default in new accounts, so lifting it is rare and deliberate. HIGH.
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
from detections.document_shared import TRANSFER_TO_CLOUD_ACCOUNT
from detections.execution_paths import base_context, document_and_principal
from ssm_detect.execution_calls import UpdateServiceSettingCall
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent

IMPAIR_DEFENSES = AttackRef(
    tactic_id="TA0005",
    tactic="defense-evasion",
    technique_id="T1562",
    technique="Impair Defenses",
)

METADATA = DetectionMetadata(
    id="AWS.SSM.PublicSharingBlockDisabled",
    title="SSM block on public document sharing turned off",
    description=(
        "A principal called ssm:UpdateServiceSetting to set "
        "/ssm/documents/console/public-sharing-permission to Enable, which lets documents of "
        "this account and region be shared with every AWS account."
    ),
    severity=Severity.HIGH,
    attack=(IMPAIR_DEFENSES, TRANSFER_TO_CLOUD_ACCOUNT, CLOUD_ADMINISTRATION_COMMAND),
    seed="ours (issue 12 point 2); AWS Security Hub control SSM.7 (block public sharing)",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "documents-ssm-sharing.html#block-public-access",
        "https://docs.aws.amazon.com/securityhub/latest/userguide/ssm-controls.html",
    ),
    false_positives=("A deliberate decision to publish documents, made once per region.",),
    runbook=(
        "Confirm the change with the account owner. If unexpected, set the setting back to "
        "Disable (ssm:UpdateServiceSetting) and list documents shared publicly since "
        "(ssm:ListDocuments with Owner=Self, then ssm:DescribeDocumentPermission)."
    ),
)


class PublicSharingBlockDisabledDetection(CallDetection[UpdateServiceSettingCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = UpdateServiceSettingCall

    def judge(
        self, event: SsmEvent, call: UpdateServiceSettingCall, settings: Settings
    ) -> Verdict | None:
        del settings
        if not call.request.allows_public_sharing:
            return None
        record = event.record
        context = base_context(event, call.malformed_fields)
        context.update(
            {"setting_id": call.request.setting_id, "setting_value": call.request.setting_value}
        )
        return Verdict.of_event(
            event,
            summary=(
                f"{event.principal.key} allowed public sharing of SSM documents in "
                f"{record.aws_region}"
            ),
            severity=METADATA.severity,
            resources=document_and_principal(event, None),
            context=context,
        )
