"""AWS.SSM.MaintenanceWindowTaskRunsCode: a maintenance-window task that runs shell on targets.

Ours (issue 12 point 5). `RegisterTaskWithMaintenanceWindow` / `UpdateMaintenanceWindowTask`
with a RUN_COMMAND task (a document that runs commands) or an AUTOMATION task (a runbook with
code parameters) makes the window run it on its targets at every occurrence: execution and
persistence that the window's service role carries out. The finding names the person who
registered or changed the task.

Severity as for associations: MEDIUM for a customer document, HIGH for an AWS shell runner,
raised one step for tag or wildcard targets, raised by what the visible parameters show.
LAMBDA and STEP_FUNCTIONS tasks, and documents that run no caller code, never fire.
"""

from __future__ import annotations

from typing import ClassVar

from detections.association_runs_code import SCHEDULED_TASK
from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    CallDetection,
    DetectionMetadata,
    Verdict,
)
from detections.execution_paths import (
    base_context,
    code_parameters,
    code_runner,
    document_and_principal,
    reach_of,
    service_lowered,
    ssm_resource,
    with_content_evidence,
)
from ssm_detect.execution_calls import MaintenanceWindowTaskCall
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent

_DOCUMENT_TASKS = frozenset({"RUN_COMMAND", "AUTOMATION"})

METADATA = DetectionMetadata(
    id="AWS.SSM.MaintenanceWindowTaskRunsCode",
    title="SSM maintenance-window task runs shell commands on its targets",
    description=(
        "A principal registered or changed a maintenance-window task that runs a "
        "command-running document or a runbook with code on the window's targets."
    ),
    severity=Severity.MEDIUM,
    attack=(CLOUD_ADMINISTRATION_COMMAND, SCHEDULED_TASK),
    seed="ours (issue 12 point 5)",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "maintenance-windows-assign-tasks.html",
        "https://attack.mitre.org/techniques/T1053/",
    ),
    false_positives=("Patching and maintenance scripts registered by the platform team.",),
    runbook=(
        "Describe the task (ssm:GetMaintenanceWindowTask) and the window's schedule and "
        "targets. If unexpected, deregister the task before the next window and review the "
        "principal's other changes."
    ),
)


class MaintenanceWindowTaskRunsCodeDetection(CallDetection[MaintenanceWindowTaskCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = MaintenanceWindowTaskCall

    def judge(
        self, event: SsmEvent, call: MaintenanceWindowTaskCall, settings: Settings
    ) -> Verdict | None:
        del settings
        if call.task_type not in _DOCUMENT_TASKS:
            return None
        task = call.task
        runner = code_runner(task.task_arn)
        passes_code = bool(code_parameters(task.parameters))
        runs_code = runner is not None if call.task_type == "RUN_COMMAND" else passes_code
        if not runs_code and not (runner and runner.certain):
            return None
        reasons = [runner.reason] if runner else ["its parameters pass code"]
        severity = Severity.HIGH if runner and runner.certain else METADATA.severity
        reach = reach_of(task.targets)
        # A window's own targets (`WindowTargetIds`) are its normal shape, not a widening.
        if any(not u.startswith("WindowTargetIds=") for u in reach.unknown):
            severity = severity.raised()
            reasons.append(f"raised one step: reaches {', '.join(reach.unknown)}")
        context = base_context(event, call.malformed_fields)
        context.update(
            {
                "document_name": task.task_arn,
                "task_type": call.task_type,
                "window_id": task.window_id,
                "window_task_id": task.window_task_id,
                "task_name": task.name,
                "service_role_arn": task.service_role_arn,
                "reach": reach.describe,
                "output_s3_bucket": task.output_bucket,
            }
        )
        severity = with_content_evidence(severity, reasons, context, task.parameters)
        severity = service_lowered(event, severity, reasons)
        resources = document_and_principal(event, task.task_arn)
        if task.window_id:
            resources = (*resources, ssm_resource(event, "maintenancewindow", task.window_id))
        return Verdict.of_event(
            event,
            summary=(
                f"{event.principal.key} set maintenance window {task.window_id} to run "
                f"{task.task_arn} on {reach.describe}"
            ),
            severity=severity,
            severity_reasons=tuple(reasons),
            resources=resources,
            context=context,
        )
