"""Calls that make SSM run a document later or elsewhere: State Manager associations, Automation
executions and change requests, maintenance-window tasks.

Each of them names a document, where it runs (instance ids, `targets`, a target parameter) and
its parameters (which CloudTrail often replaces by `HIDDEN_DUE_TO_SECURITY_REASONS`). Field
names follow CloudTrail (camelCase).
"""

from __future__ import annotations

from pydantic import Field

from ssm_detect.models.bounds import FreeFormJson
from ssm_detect.models.tolerant import Name, Targets, Text, TolerantCall

MAX_BATCH = 50
"""CreateAssociationBatch takes at most 10 entries; kept well above, cut beyond."""


class OutputS3Location(TolerantCall):
    output_s3_bucket_name: Name | None = Field(default=None, alias="outputS3BucketName")


class OutputLocation(TolerantCall):
    s3_location: OutputS3Location | None = Field(default=None, alias="s3Location")


class Association(TolerantCall):
    """A CreateAssociation / UpdateAssociation request, a batch entry, or the description the
    response returns (the same fields)."""

    name: Name | None = None
    """The document the association runs."""
    association_id: Name | None = Field(default=None, alias="associationId")
    association_name: Name | None = Field(default=None, alias="associationName")
    document_version: Text | None = Field(default=None, alias="documentVersion")
    instance_id: Name | None = Field(default=None, alias="instanceId")
    targets: Targets = ()
    schedule_expression: Text | None = Field(default=None, alias="scheduleExpression")
    parameters: FreeFormJson = None
    output_location: OutputLocation | None = Field(default=None, alias="outputLocation")
    automation_target_parameter_name: Text | None = Field(
        default=None, alias="automationTargetParameterName"
    )


class AssociationResponse(TolerantCall):
    association_description: Association | None = Field(
        default=None, alias="associationDescription"
    )


class CreateAssociationBatchRequest(TolerantCall):
    entries: tuple[Association, ...] = ()

    @property
    def bounded(self) -> tuple[Association, ...]:
        return self.entries[:MAX_BATCH]


class CreateAssociationBatchResponse(TolerantCall):
    successful: tuple[Association, ...] = ()


class StartAutomationExecutionRequest(TolerantCall):
    document_name: Name | None = Field(default=None, alias="documentName")
    document_version: Text | None = Field(default=None, alias="documentVersion")
    parameters: FreeFormJson = None
    target_parameter_name: Text | None = Field(default=None, alias="targetParameterName")
    targets: Targets = ()
    mode: Text | None = None


class Runbook(TolerantCall):
    document_name: Name | None = Field(default=None, alias="documentName")
    document_version: Text | None = Field(default=None, alias="documentVersion")
    parameters: FreeFormJson = None
    target_parameter_name: Text | None = Field(default=None, alias="targetParameterName")
    targets: Targets = ()


class StartChangeRequestExecutionRequest(TolerantCall):
    document_name: Name | None = Field(default=None, alias="documentName")
    """The change template; the code runs in `runbooks`."""
    change_request_name: Name | None = Field(default=None, alias="changeRequestName")
    runbooks: tuple[Runbook, ...] = ()
    parameters: FreeFormJson = None


class AutomationResponse(TolerantCall):
    automation_execution_id: Name | None = Field(default=None, alias="automationExecutionId")


class RunCommandInvocation(TolerantCall):
    parameters: FreeFormJson = None
    document_version: Text | None = Field(default=None, alias="documentVersion")
    output_s3_bucket_name: Name | None = Field(default=None, alias="outputS3BucketName")
    comment: Text | None = None


class AutomationInvocation(TolerantCall):
    parameters: FreeFormJson = None
    document_version: Text | None = Field(default=None, alias="documentVersion")


class TaskInvocationParameters(TolerantCall):
    run_command: RunCommandInvocation | None = Field(default=None, alias="runCommand")
    automation: AutomationInvocation | None = None


class MaintenanceWindowTask(TolerantCall):
    """A RegisterTaskWithMaintenanceWindow / UpdateMaintenanceWindowTask request (or the
    update's response, which repeats the fields)."""

    window_id: Name | None = Field(default=None, alias="windowId")
    window_task_id: Name | None = Field(default=None, alias="windowTaskId")
    task_arn: Name | None = Field(default=None, alias="taskArn")
    """For RUN_COMMAND and AUTOMATION tasks, the document's name or ARN."""
    task_type: Text | None = Field(default=None, alias="taskType")
    targets: Targets = ()
    service_role_arn: Text | None = Field(default=None, alias="serviceRoleArn")
    task_parameters: FreeFormJson = Field(default=None, alias="taskParameters")
    # CloudTrail writes `HIDDEN_DUE_TO_SECURITY_REASONS` here in most records: a string.
    task_invocation_parameters: TaskInvocationParameters | str | None = Field(
        default=None, alias="taskInvocationParameters"
    )
    name: Name | None = None

    @property
    def parameters(self) -> object:
        """The parameters the task passes to its document, wherever the caller put them."""
        invocation = self._invocation
        if invocation and invocation.run_command and invocation.run_command.parameters:
            return invocation.run_command.parameters
        if invocation and invocation.automation and invocation.automation.parameters:
            return invocation.automation.parameters
        return self.task_parameters

    @property
    def _invocation(self) -> TaskInvocationParameters | None:
        invocation = self.task_invocation_parameters
        return invocation if isinstance(invocation, TaskInvocationParameters) else None

    @property
    def output_bucket(self) -> str | None:
        invocation = self._invocation
        run = invocation.run_command if invocation else None
        return run.output_s3_bucket_name if run else None
