"""An SSM API call, parsed once at the edge, as every detection sees it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ssm_detect.execution_calls import ExecutionCall, execution_call_of
from ssm_detect.models.cloudtrail import CloudTrailRecord
from ssm_detect.models.ssm_calls import (
    CreateDocumentRequest,
    CreateDocumentResponse,
    SendCommandRequest,
    SendCommandResponse,
    Target,
)
from ssm_detect.principal import Principal, PrincipalKeying, principal_of

COMMAND_DOCUMENT = "Command"


@dataclass(frozen=True)
class SendCommandCall:
    request: SendCommandRequest
    response: SendCommandResponse

    @cached_property
    def instance_ids(self) -> tuple[str, ...]:
        """Explicit ids from the request and the response, first-seen order, no repeats."""
        command = self.response.command
        ids = self.request.instance_ids + (command.instance_ids if command else ())
        return tuple(dict.fromkeys(ids))

    @cached_property
    def targets(self) -> tuple[Target, ...]:
        command = self.response.command
        return tuple(dict.fromkeys(self.request.targets + (command.targets if command else ())))

    @property
    def document_name(self) -> str | None:
        command = self.response.command
        return self.request.document_name or (command.document_name if command else None)

    @property
    def command_id(self) -> str | None:
        return self.response.command.command_id if self.response.command else None


@dataclass(frozen=True)
class CreateDocumentCall:
    request: CreateDocumentRequest
    response: CreateDocumentResponse

    @property
    def document_type(self) -> str:
        """The response is authoritative; the API defaults a missing `DocumentType` to Command."""
        described = self.response.document_description
        if described and described.document_type:
            return described.document_type
        return self.request.document_type or COMMAND_DOCUMENT

    @property
    def is_command_document(self) -> bool:
        return self.document_type.lower() == COMMAND_DOCUMENT.lower()

    @property
    def document_name(self) -> str | None:
        described = self.response.document_description
        return self.request.name or (described.name if described else None)


SsmCall = SendCommandCall | CreateDocumentCall | ExecutionCall


@dataclass(frozen=True)
class SsmEvent:
    record: CloudTrailRecord
    principal: Principal
    call: SsmCall | None
    """None for SSM calls no detection inspects in detail (they still reach the pipeline)."""

    @property
    def event_id(self) -> str:
        return self.record.event_id

    @property
    def account_id(self) -> str:
        return self.record.account_id


def to_ssm_event(record: CloudTrailRecord, keying: PrincipalKeying) -> SsmEvent:
    """Parse the call-specific parts; raises pydantic.ValidationError / TypeError / ValueError."""
    return SsmEvent(record=record, principal=principal_of(record, keying), call=_call_of(record))


def _call_of(record: CloudTrailRecord) -> SsmCall | None:
    request = record.request_parameters or {}
    response = record.response_elements or {}
    if record.event_name == "SendCommand":
        return SendCommandCall(
            SendCommandRequest.model_validate(request),
            SendCommandResponse.model_validate(response),
        )
    if record.event_name == "CreateDocument":
        return CreateDocumentCall(
            CreateDocumentRequest.model_validate(request),
            CreateDocumentResponse.model_validate(response),
        )
    return execution_call_of(record)
