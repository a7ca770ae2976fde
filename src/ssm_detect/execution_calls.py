"""The calls beyond SendCommand and CreateDocument that change or run documents, as detections
see them (issue 12): one small dataclass per call over its request and response models.

Every call here answers `document_name` (the pipeline's allowlist matches on it) and
`malformed_fields` (fields dropped because they did not fit: named in the finding).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ssm_detect.models.cloudtrail import CloudTrailRecord
from ssm_detect.models.document_calls import (
    ModifyDocumentPermissionRequest,
    UpdateDocumentDefaultVersionRequest,
    UpdateDocumentDefaultVersionResponse,
    UpdateDocumentRequest,
    UpdateDocumentResponse,
    UpdateServiceSettingRequest,
)
from ssm_detect.models.scheduled_calls import (
    Association,
    AssociationResponse,
    AutomationResponse,
    CreateAssociationBatchRequest,
    CreateAssociationBatchResponse,
    MaintenanceWindowTask,
    Runbook,
    StartAutomationExecutionRequest,
    StartChangeRequestExecutionRequest,
)
from ssm_detect.models.ssm_calls import Target
from ssm_detect.models.tolerant import TolerantCall


def _malformed(*models: TolerantCall | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for m in models if m is not None for f in m.malformed_fields))


@dataclass(frozen=True)
class UpdateDocumentCall:
    request: UpdateDocumentRequest
    response: UpdateDocumentResponse

    @property
    def document_name(self) -> str | None:
        described = self.response.document_description
        return self.request.name or (described.name if described else None)

    @property
    def new_version(self) -> str | None:
        """The version this call created (the response's `documentVersion`)."""
        described = self.response.document_description
        return described.document_version if described else None

    @property
    def document_type(self) -> str | None:
        described = self.response.document_description
        return described.document_type if described else None

    @property
    def malformed_fields(self) -> tuple[str, ...]:
        return _malformed(self.request, self.response, self.response.document_description)


@dataclass(frozen=True)
class UpdateDefaultVersionCall:
    request: UpdateDocumentDefaultVersionRequest
    response: UpdateDocumentDefaultVersionResponse

    @property
    def document_name(self) -> str | None:
        described = self.response.description
        return self.request.name or (described.name if described else None)

    @property
    def version(self) -> str | None:
        described = self.response.description
        return self.request.document_version or (described.default_version if described else None)

    @property
    def malformed_fields(self) -> tuple[str, ...]:
        return _malformed(self.request, self.response)


@dataclass(frozen=True)
class ModifyDocumentPermissionCall:
    request: ModifyDocumentPermissionRequest

    @property
    def document_name(self) -> str | None:
        return self.request.name

    @property
    def malformed_fields(self) -> tuple[str, ...]:
        return self.request.malformed_fields


@dataclass(frozen=True)
class UpdateServiceSettingCall:
    request: UpdateServiceSettingRequest
    document_name: None = None

    @property
    def malformed_fields(self) -> tuple[str, ...]:
        return self.request.malformed_fields


@dataclass(frozen=True)
class AssociationCall:
    """CreateAssociation, UpdateAssociation (one association) or CreateAssociationBatch
    (several): each as the request asked, completed by what the response described."""

    associations: tuple[Association, ...]
    malformed_fields: tuple[str, ...] = ()

    @property
    def document_name(self) -> str | None:
        return next((a.name for a in self.associations if a.name), None)


@dataclass(frozen=True)
class RunbookStart:
    """What an Automation execution or a change request runs: a runbook, where, with what."""

    document_name: str | None
    document_version: str | None
    parameters: object
    target_parameter_name: str | None
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class AutomationCall:
    """StartAutomationExecution (one runbook) or StartChangeRequestExecution (its runbooks)."""

    runbooks: tuple[RunbookStart, ...]
    execution_id: str | None
    malformed_fields: tuple[str, ...] = ()

    @property
    def document_name(self) -> str | None:
        return next((r.document_name for r in self.runbooks if r.document_name), None)


@dataclass(frozen=True)
class MaintenanceWindowTaskCall:
    task: MaintenanceWindowTask

    @property
    def document_name(self) -> str | None:
        return self.task.task_arn

    @cached_property
    def task_type(self) -> str:
        return (self.task.task_type or "").upper()

    @property
    def malformed_fields(self) -> tuple[str, ...]:
        invocation = self.task.task_invocation_parameters
        nested = invocation if isinstance(invocation, TolerantCall) else None
        return _malformed(self.task, nested)


ExecutionCall = (
    UpdateDocumentCall
    | UpdateDefaultVersionCall
    | ModifyDocumentPermissionCall
    | UpdateServiceSettingCall
    | AssociationCall
    | AutomationCall
    | MaintenanceWindowTaskCall
)


def execution_call_of(record: CloudTrailRecord) -> ExecutionCall | None:
    """The call model for the record's event name; None for names this module does not know."""
    request = record.request_parameters or {}
    response = record.response_elements or {}
    parse = _PARSERS.get(record.event_name)
    return parse(request, response) if parse else None


def _update_document(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    return UpdateDocumentCall(
        UpdateDocumentRequest.model_validate(request),
        UpdateDocumentResponse.model_validate(response),
    )


def _default_version(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    return UpdateDefaultVersionCall(
        UpdateDocumentDefaultVersionRequest.model_validate(request),
        UpdateDocumentDefaultVersionResponse.model_validate(response),
    )


def _permission(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    del response
    return ModifyDocumentPermissionCall(ModifyDocumentPermissionRequest.model_validate(request))


def _service_setting(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    del response
    return UpdateServiceSettingCall(UpdateServiceSettingRequest.model_validate(request))


def _association(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    asked = Association.model_validate(request)
    described = AssociationResponse.model_validate(response)
    merged = _merge(asked, described.association_description)
    return AssociationCall((merged,), _malformed(asked, described, merged))


def _association_batch(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    asked = CreateAssociationBatchRequest.model_validate(request)
    described = CreateAssociationBatchResponse.model_validate(response)
    # The response lists the created associations (with their ids) in request order, minus the
    # failed ones; match them by document name and targets, not by position.
    merged = tuple(_merge(entry, _described_as(entry, described)) for entry in asked.bounded)
    merged = merged or described.successful
    return AssociationCall(merged, _malformed(asked, described, *merged))


def _described_as(
    entry: Association, described: CreateAssociationBatchResponse
) -> Association | None:
    return next(
        (d for d in described.successful if d.name == entry.name and d.targets == entry.targets),
        None,
    )


def _merge(asked: Association, described: Association | None) -> Association:
    """The request's fields, with what only the response knows (the association id) added."""
    if described is None:
        return asked
    filled = {
        name: getattr(described, name)
        for name in Association.model_fields
        if getattr(asked, name) in (None, ()) and getattr(described, name) not in (None, ())
    }
    return asked.model_copy(update=filled) if filled else asked


def _automation(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    asked = StartAutomationExecutionRequest.model_validate(request)
    started = AutomationResponse.model_validate(response)
    runbook = RunbookStart(
        asked.document_name,
        asked.document_version,
        asked.parameters,
        asked.target_parameter_name,
        asked.targets,
    )
    return AutomationCall((runbook,), started.automation_execution_id, _malformed(asked, started))


def _change_request(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    asked = StartChangeRequestExecutionRequest.model_validate(request)
    started = AutomationResponse.model_validate(response)
    runbooks = tuple(_runbook(r) for r in asked.runbooks)
    malformed = _malformed(asked, started, *asked.runbooks)
    return AutomationCall(runbooks, started.automation_execution_id, malformed)


def _runbook(runbook: Runbook) -> RunbookStart:
    return RunbookStart(
        runbook.document_name,
        runbook.document_version,
        runbook.parameters,
        runbook.target_parameter_name,
        runbook.targets,
    )


def _window_task(request: dict[str, object], response: dict[str, object]) -> ExecutionCall:
    asked = MaintenanceWindowTask.model_validate(request)
    if response:
        described = MaintenanceWindowTask.model_validate(response)
        filled = {
            name: getattr(described, name)
            for name in ("window_task_id", "task_arn", "task_type", "targets")
            if getattr(asked, name) in (None, ()) and getattr(described, name) not in (None, ())
        }
        asked = asked.model_copy(update=filled) if filled else asked
    return MaintenanceWindowTaskCall(asked)


_PARSERS = {
    "UpdateDocument": _update_document,
    "UpdateDocumentDefaultVersion": _default_version,
    "ModifyDocumentPermission": _permission,
    "UpdateServiceSetting": _service_setting,
    "CreateAssociation": _association,
    "UpdateAssociation": _association,
    "CreateAssociationBatch": _association_batch,
    "StartAutomationExecution": _automation,
    "StartChangeRequestExecution": _change_request,
    "RegisterTaskWithMaintenanceWindow": _window_task,
    "UpdateMaintenanceWindowTask": _window_task,
}
EXECUTION_EVENT_NAMES = tuple(_PARSERS)
"""The event names this module models, in the order the README lists them."""
