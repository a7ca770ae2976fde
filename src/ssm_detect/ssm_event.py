"""An SSM API call, parsed once at the edge, as every detection sees it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ssm_detect.execution_calls import ExecutionCall, execution_call_of
from ssm_detect.models.cloudtrail import CloudTrailRecord
from ssm_detect.models.session_calls import (
    CreateActivationRequest,
    CreateActivationResponse,
    DescribeParametersRequest,
    ParameterReadRequest,
    StartSessionRequest,
    StartSessionResponse,
)
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


# Session Manager's default document when StartSession names none: a shell.
DEFAULT_SESSION_DOCUMENT = "SSM-SessionManagerRunShell"
PARAMETER_READS = ("GetParameter", "GetParameters", "GetParametersByPath")


@dataclass(frozen=True)
class StartSessionCall:
    request: StartSessionRequest
    response: StartSessionResponse

    @property
    def document_name(self) -> str:
        return self.request.document_name or DEFAULT_SESSION_DOCUMENT

    @property
    def target(self) -> str | None:
        return self.request.target

    @property
    def session_id(self) -> str | None:
        return self.response.session_id

    def parameter(self, name: str) -> tuple[str, ...]:
        """A session parameter's values (the API's names are case-sensitive; so are we)."""
        return self.request.parameter_values.get(name, ())


@dataclass(frozen=True)
class ParameterReadCall:
    """GetParameter / GetParameters / GetParametersByPath."""

    event_name: str
    request: ParameterReadRequest

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names read by name, first-seen order, no repeats (no paths)."""
        single = (self.request.name,) if self.request.name else ()
        return tuple(dict.fromkeys(single + self.request.names))

    @property
    def path(self) -> str | None:
        return self.request.path if self.event_name == "GetParametersByPath" else None

    @property
    def decrypts(self) -> bool:
        return self.request.decrypts

    @property
    def document_name(self) -> None:
        return None


@dataclass(frozen=True)
class DescribeParametersCall:
    request: DescribeParametersRequest

    @property
    def document_name(self) -> None:
        return None


@dataclass(frozen=True)
class CreateActivationCall:
    request: CreateActivationRequest
    response: CreateActivationResponse

    @property
    def iam_role(self) -> str | None:
        return self.request.iam_role

    @property
    def activation_id(self) -> str | None:
        return self.response.activation_id

    @property
    def document_name(self) -> None:
        return None


SsmCall = (
    SendCommandCall
    | CreateDocumentCall
    | StartSessionCall
    | ParameterReadCall
    | DescribeParametersCall
    | CreateActivationCall
    | ExecutionCall
)


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
    return execution_call_of(record) or _session_call_of(record.event_name, request, response)


def _session_call_of(
    name: str, request: dict[str, object], response: dict[str, object]
) -> SsmCall | None:
    """Issue 13's calls: sessions, parameter reads, activations."""
    if name == "StartSession":
        return StartSessionCall(
            StartSessionRequest.model_validate(request),
            StartSessionResponse.model_validate(response),
        )
    if name in PARAMETER_READS:
        return ParameterReadCall(name, ParameterReadRequest.model_validate(request))
    if name == "DescribeParameters":
        return DescribeParametersCall(DescribeParametersRequest.model_validate(request))
    if name == "CreateActivation":
        return CreateActivationCall(
            CreateActivationRequest.model_validate(request),
            CreateActivationResponse.model_validate(response),
        )
    return None
