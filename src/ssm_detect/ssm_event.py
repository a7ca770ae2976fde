"""An SSM API call, parsed once at the edge, as every detection sees it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ValidationError

from ssm_detect.execution_calls import ExecutionCall, execution_call_of
from ssm_detect.models.cloudtrail import CloudTrailRecord
from ssm_detect.models.repair import FieldError, MalformedFieldsError, located, safe_reason
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
    malformed_fields: tuple[str, ...] = ()
    """Fields that were bounded or left out to judge the call (`models.repair`)."""

    @property
    def unkeyed_reason(self) -> str | None:
        """Why the stateful detections cannot key this event (None: they can). Only a malformed
        field makes it unkeyable: an account or caller we could not read is not merged with
        others under a placeholder."""
        account_fields = {"recipientAccountId", "userIdentity.accountId"}
        if self.record.account_id == "unknown" and account_fields & set(self.malformed_fields):
            return "no valid account id"
        if "userIdentity" in self.malformed_fields:
            return "no readable userIdentity"
        return None

    @property
    def event_id(self) -> str:
        return self.record.event_id

    @property
    def account_id(self) -> str:
        return self.record.account_id


def to_ssm_event(record: CloudTrailRecord, keying: PrincipalKeying) -> SsmEvent:
    """Parse the call-specific parts; raises `MalformedFieldsError` (located from the record's root)
    for fields the call models refuse, and for a principal too long to key on."""
    try:
        principal = principal_of(record, keying)
    except ValueError as error:
        raise MalformedFieldsError(
            [FieldError(("userIdentity",), "too_long")], str(error)
        ) from None
    return SsmEvent(record=record, principal=principal, call=_call_of(record))


def _validated(model: type[BaseModel], value: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        prefix = (where,)
        raise MalformedFieldsError(located(error, prefix), safe_reason(error, prefix)) from None


def _call_of(record: CloudTrailRecord) -> SsmCall | None:
    request = record.request_parameters or {}
    response = record.response_elements or {}
    if record.event_name == "SendCommand":
        return SendCommandCall(
            _validated(SendCommandRequest, request, "requestParameters"),
            _validated(SendCommandResponse, response, "responseElements"),
        )
    if record.event_name == "CreateDocument":
        return CreateDocumentCall(
            _validated(CreateDocumentRequest, request, "requestParameters"),
            _validated(CreateDocumentResponse, response, "responseElements"),
        )
    return execution_call_of(record) or _session_call_of(record.event_name, request, response)


def _session_call_of(
    name: str, request: dict[str, object], response: dict[str, object]
) -> SsmCall | None:
    """Issue 13's calls: sessions, parameter reads, activations."""
    if name == "StartSession":
        return StartSessionCall(
            _validated(StartSessionRequest, request, "requestParameters"),
            _validated(StartSessionResponse, response, "responseElements"),
        )
    if name in PARAMETER_READS:
        return ParameterReadCall(
            name, _validated(ParameterReadRequest, request, "requestParameters")
        )
    if name == "DescribeParameters":
        return DescribeParametersCall(
            _validated(DescribeParametersRequest, request, "requestParameters")
        )
    if name == "CreateActivation":
        return CreateActivationCall(
            _validated(CreateActivationRequest, request, "requestParameters"),
            _validated(CreateActivationResponse, response, "responseElements"),
        )
    return None
