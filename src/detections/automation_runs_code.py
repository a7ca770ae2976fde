"""AWS.SSM.AutomationRunsCode: an Automation execution (or change request) that runs code.

Ours (issue 12 point 4). Automation runbooks run shell on instances through `aws:runCommand`
and Python or PowerShell in AWS's own runtime through `aws:executeScript`. The SendCommands
they issue are made by `ssm.amazonaws.com`, which the literal SendCommand rule lowers to
"AWS service"; this finding is keyed to the person who started the execution.

A runbook is judged to run code when it is an AWS shell runner, or when the parameters
CloudTrail shows pass code (`commands`, `Script`, `sourceInfo`) or make the content inspector
fire. Customer runbooks whose parameters are hidden are left to the chain detection, which
knows their content from their creation. Fan-out: the targets (`InstanceIds`, tags, `*`, or
the `TargetParameterName` parameter's values) are counted like SendCommand's; unknown-size
targets raise one step. AWS-owned runbooks without code parameters (Config remediation's
AWSConfigRemediation-*, AWS-RestartEC2Instance) never fire.
"""

from __future__ import annotations

from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    CallDetection,
    DetectionMetadata,
    Verdict,
)
from detections.execution_paths import (
    Judged,
    Reach,
    code_parameters,
    code_runner,
    document_and_principal,
    inspect_parameters,
    reach_of,
    ssm_resource,
    strongest,
    with_content_evidence,
)
from ssm_detect.execution_calls import AutomationCall, RunbookStart
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent

METADATA = DetectionMetadata(
    id="AWS.SSM.AutomationRunsCode",
    title="SSM Automation execution runs code on instances or in AWS",
    description=(
        "A principal started an Automation runbook (directly or through a change request) that "
        "runs commands on managed instances or scripts in the Automation runtime."
    ),
    severity=Severity.MEDIUM,
    attack=(CLOUD_ADMINISTRATION_COMMAND,),
    seed="ours (issue 12 point 4)",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "automation-action-executeScript.html",
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "automation-action-runcommand.html",
        "https://attack.mitre.org/techniques/T1651/",
    ),
    false_positives=(
        "Operational runbooks that take commands as parameters, started by on-call engineers.",
    ),
    runbook=(
        "Read the execution (ssm:GetAutomationExecution): its steps, parameters and outputs, "
        "and the commands its aws:runCommand steps sent. If unexpected, stop it "
        "(ssm:StopAutomationExecution) and review the instances and the starter's session."
    ),
)


class AutomationRunsCodeDetection(CallDetection[AutomationCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = AutomationCall

    def judge(self, event: SsmEvent, call: AutomationCall, settings: Settings) -> Verdict | None:
        del settings
        judged = [j for j in (_judge(r) for r in call.runbooks) if j is not None]
        if not judged:
            return None
        severity, reasons, context = strongest(
            event,
            call.malformed_fields,
            judged,
            "runbooks",
            {"automation_execution_id": call.execution_id},
        )
        resources = document_and_principal(event, context["document_name"])
        if call.execution_id:
            resources = (*resources, ssm_resource(event, "automation-execution", call.execution_id))
        return Verdict.of_event(
            event,
            summary=(
                f"{event.principal.key} started runbook {context['document_name']} "
                f"on {context['reach']}"
            ),
            severity=severity,
            severity_reasons=reasons,
            resources=resources,
            context=context,
        )


def _judge(runbook: RunbookStart) -> Judged | None:
    runner = code_runner(runbook.document_name)
    report = inspect_parameters(runbook.parameters)
    passes_code = bool(code_parameters(runbook.parameters)) or bool(report and report.hits)
    if not ((runner and runner.certain) or passes_code):
        return None
    reasons = [runner.reason] if runner and runner.certain else []
    if passes_code:
        reasons.append("its parameters pass code")
    severity = Severity.HIGH if runner and runner.certain else METADATA.severity
    reach = reach_of(runbook.targets, _target_parameter_values(runbook))
    if reach.wide:
        severity = severity.raised()
        reasons.append(f"raised one step: reaches {', '.join(reach.unknown)}")
    context: dict[str, Any] = {
        "document_name": runbook.document_name,
        "document_version": runbook.document_version,
        "target_parameter_name": runbook.target_parameter_name,
        "reach": reach.describe,
        "instance_ids": list(reach.instance_ids[:50]),
        "instance_count": len(reach.instance_ids),
    }
    severity = with_content_evidence(severity, reasons, context, runbook.parameters)
    return severity, tuple(reasons), context


def code_reach(call: AutomationCall) -> Reach | None:
    """Where the call's code-running runbooks run (None when none runs code): what the
    command fan-out (`AWS.SSM.DistributedCommand`) counts, like SendCommand's instances."""
    reaches = [
        reach_of(r.targets, _target_parameter_values(r))
        for r in call.runbooks
        if _judge(r) is not None
    ]
    if not reaches:
        return None
    return Reach(
        tuple(dict.fromkeys(i for reach in reaches for i in reach.instance_ids)),
        tuple(dict.fromkeys(u for reach in reaches for u in reach.unknown)),
    )


def _target_parameter_values(runbook: RunbookStart) -> tuple[str, ...]:
    """Instance ids passed as the runbook's parameters (`InstanceId`, or the parameter
    `TargetParameterName` names), so that `targets` and parameters count alike."""
    parameters = runbook.parameters
    if not isinstance(parameters, dict):
        return ()
    names = {"instanceid", "instanceids", (runbook.target_parameter_name or "").lower()}
    values: list[str] = []
    for name, value in parameters.items():
        if str(name).lower() in names:
            items = value if isinstance(value, list) else [value]
            values += [str(v) for v in items[:1000] if isinstance(v, str)]
    return tuple(values)
