"""AWS.SSM.AssociationRunsCode: a State Manager association that runs shell on instances.

Ours (issue 12 point 3). An association is SendCommand on a schedule: `CreateAssociation`,
`CreateAssociationBatch` or `UpdateAssociation` with a document that runs commands
(AWS-RunShellScript, AWS-RunPowerShellScript, AWS-RunRemoteScript, AWS-RunDocument,
AWS-ApplyAnsiblePlaybooks, or a customer document) keeps running it on every instance it
targets, including instances launched later, with no further call by the attacker: execution
and persistence in one call. The SendCommands State Manager then issues are made by
`ssm.amazonaws.com`; this finding names the person who configured them.

Severity MEDIUM for a customer document (its content is judged where it was created), HIGH for
an AWS shell runner (it runs whatever commands the caller passed); raised one step when it
reaches every instance, a tag or a resource group; raised further by what the visible
parameters show (the content inspector). AWS-owned documents that run no caller code
(AWS-RunPatchBaseline, AWS-GatherSoftwareInventory, AWS-UpdateSSMAgent) never fire, whoever
creates the association.
"""

from __future__ import annotations

from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    AttackRef,
    CallDetection,
    DetectionMetadata,
    Verdict,
)
from detections.execution_paths import (
    Judged,
    code_runner,
    document_and_principal,
    reach_of,
    ssm_resource,
    strongest,
    with_content_evidence,
)
from ssm_detect.execution_calls import AssociationCall
from ssm_detect.findings import Severity
from ssm_detect.models.scheduled_calls import Association
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent

SCHEDULED_TASK = AttackRef(
    tactic_id="TA0003",
    tactic="persistence",
    technique_id="T1053",
    technique="Scheduled Task/Job",
)

METADATA = DetectionMetadata(
    id="AWS.SSM.AssociationRunsCode",
    title="SSM State Manager association runs shell commands on instances",
    description=(
        "A principal created or changed a State Manager association whose document runs "
        "commands on managed instances, on a schedule or across many instances."
    ),
    severity=Severity.MEDIUM,
    attack=(CLOUD_ADMINISTRATION_COMMAND, SCHEDULED_TASK),
    seed="ours (issue 12 point 3)",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/state-manager-about.html",
        "https://attack.mitre.org/techniques/T1651/",
        "https://attack.mitre.org/techniques/T1053/",
    ),
    false_positives=(
        "Configuration management run through State Manager (Ansible playbooks, bootstrap "
        "scripts) by a platform team: allowlist its role for this detection.",
    ),
    runbook=(
        "Describe the association (ssm:DescribeAssociation) and its executions; read the "
        "document and the commands. If unexpected, delete the association, then review the "
        "instances it ran on and the principal's other calls."
    ),
)


class AssociationRunsCodeDetection(CallDetection[AssociationCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = AssociationCall

    def judge(self, event: SsmEvent, call: AssociationCall, settings: Settings) -> Verdict | None:
        del settings
        judged = [_judge(a) for a in call.associations]
        running = [j for j in judged if j is not None]
        if not running:
            return None
        severity, reasons, context = strongest(
            event, call.malformed_fields, running, "associations"
        )
        resources = document_and_principal(event, context["document_name"])
        ids = [a.association_id for a in call.associations if a.association_id]
        resources = (*resources, *(ssm_resource(event, "association", i) for i in ids[:10]))
        return Verdict.of_event(
            event,
            summary=(
                f"{event.principal.key} set State Manager to run {context['document_name']} "
                f"on {context['reach']}"
                + (f" ({context['schedule']})" if context.get("schedule") else "")
            ),
            severity=severity,
            severity_reasons=reasons,
            resources=resources,
            context=context,
        )


def _judge(association: Association) -> Judged | None:
    runner = code_runner(association.name)
    if runner is None:
        return None
    named = (association.instance_id,) if association.instance_id else ()
    reach = reach_of(association.targets, named)
    severity = Severity.HIGH if runner.certain else METADATA.severity
    reasons = [runner.reason]
    if reach.wide:
        severity = severity.raised()
        reasons.append(f"raised one step: reaches {', '.join(reach.unknown)}")
    context: dict[str, Any] = {
        "document_name": association.name,
        "document_version": association.document_version,
        "association_id": association.association_id,
        "association_name": association.association_name,
        "reach": reach.describe,
        "instance_ids": list(reach.instance_ids[:50]),
        "schedule": association.schedule_expression,
    }
    bucket = association.output_location.s3_location if association.output_location else None
    if bucket and bucket.output_s3_bucket_name:
        context["output_s3_bucket"] = bucket.output_s3_bucket_name
    severity = with_content_evidence(severity, reasons, context, association.parameters)
    return severity, tuple(reasons), context
