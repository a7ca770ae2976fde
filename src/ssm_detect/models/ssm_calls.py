"""The two SSM API calls we detect on: `requestParameters` / `responseElements` as typed models.

Field names follow CloudTrail (camelCase, via aliases). Lists are bounded well above the API's
own limits (SendCommand takes at most 50 instance ids) so that a corrupted or hostile record
cannot make us store or format an unbounded amount of data: a field past its bound is cut or
left out and named (models/repair.py), and the call is still judged.
Document names are part of state keys (`KeyPart`); the free-form JSON a caller sends
(`parameters`, `content`, `tags`) is cut down to a bounded nesting depth instead (see
`ssm_detect.models.bounds`): the call ran, so it is still detected.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ssm_detect.models.bounds import FreeFormJson, KeyPart, nesting_truncated

MAX_INSTANCE_IDS = 1000
MAX_TARGETS = 50
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
# Instance ids are `i-` + 8 or 17 hex digits, managed nodes `mi-` + 17; `*` is SendCommand's
# wildcard. Anything else is not an instance: the entry is left out and named as malformed
# (models/repair.py), the call is still judged. The bound keeps state items small.
InstanceId = Annotated[str, StringConstraints(max_length=128, pattern=r"^(\*|m?i-[0-9a-f]{8,32})$")]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)


class Target(_Lenient):
    """One `targets` entry. Real records keep the key as the caller typed it (`InstanceIds`,
    `instanceids`, `tag:Env`) and the field names in either case (`Key`/`key`)."""

    key: str = Field(max_length=256)
    values: tuple[Annotated[str, StringConstraints(max_length=256)], ...] = Field(
        default=(), max_length=MAX_INSTANCE_IDS
    )

    @field_validator("key")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @classmethod
    def from_raw(cls, raw: object) -> Target:
        """Accept `{"Key": .., "Values": ..}` in any letter case."""
        if not isinstance(raw, dict):
            raise ValueError(f"a target must be an object, got {type(raw).__name__}")
        return cls.model_validate({str(name).lower(): value for name, value in raw.items()})


def _targets(raw: object) -> tuple[Target, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"targets must be a list, got {type(raw).__name__}")
    if len(raw) > MAX_TARGETS:
        raise ValueError(f"{len(raw)} targets exceed the bound of {MAX_TARGETS}")
    return tuple(Target.from_raw(item) for item in raw)


class SendCommandRequest(_Lenient):
    document_name: KeyPart | None = Field(default=None, alias="documentName")
    document_version: str | None = Field(default=None, alias="documentVersion")
    instance_ids: tuple[InstanceId, ...] = Field(
        default=(), alias="instanceIds", max_length=MAX_INSTANCE_IDS
    )
    targets: tuple[Target, ...] = ()
    comment: str | None = None
    output_s3_bucket_name: str | None = Field(default=None, alias="outputS3BucketName")
    service_role_arn: str | None = Field(default=None, alias="serviceRoleArn")
    parameters: FreeFormJson = None

    @property
    def truncated_fields(self) -> tuple[str, ...]:
        """Free-form fields cut down to their first levels (models/bounds.py)."""
        return ("parameters",) if nesting_truncated(self.parameters) else ()

    @field_validator("targets", mode="before")
    @classmethod
    def _parse_targets(cls, raw: object) -> tuple[Target, ...]:
        return _targets(raw)

    @field_validator("instance_ids", mode="before")
    @classmethod
    def _null_is_empty(cls, raw: object) -> object:
        return () if raw is None else raw


class CommandDescription(_Lenient):
    command_id: str | None = Field(default=None, alias="commandId")
    document_name: KeyPart | None = Field(default=None, alias="documentName")
    document_version: str | None = Field(default=None, alias="documentVersion")
    instance_ids: tuple[InstanceId, ...] = Field(
        default=(), alias="instanceIds", max_length=MAX_INSTANCE_IDS
    )
    targets: tuple[Target, ...] = ()
    comment: str | None = None
    output_s3_bucket_name: str | None = Field(default=None, alias="outputS3BucketName")
    target_count: int | None = Field(default=None, alias="targetCount")

    @field_validator("targets", mode="before")
    @classmethod
    def _parse_targets(cls, raw: object) -> tuple[Target, ...]:
        return _targets(raw)

    @field_validator("instance_ids", mode="before")
    @classmethod
    def _null_is_empty(cls, raw: object) -> object:
        return () if raw is None else raw


class SendCommandResponse(_Lenient):
    command: CommandDescription | None = None


class CreateDocumentRequest(_Lenient):
    name: KeyPart | None = None
    content: FreeFormJson = None
    document_type: str | None = Field(default=None, alias="documentType")
    document_format: str | None = Field(default=None, alias="documentFormat")
    target_type: str | None = Field(default=None, alias="targetType")
    version_name: str | None = Field(default=None, alias="versionName")
    tags: FreeFormJson = None

    @property
    def truncated_fields(self) -> tuple[str, ...]:
        """Free-form fields cut down to their first levels (models/bounds.py)."""
        fields = {"content": self.content, "tags": self.tags}
        return tuple(name for name, value in fields.items() if nesting_truncated(value))


class DocumentDescription(_Lenient):
    name: KeyPart | None = None
    document_type: str | None = Field(default=None, alias="documentType")
    document_format: str | None = Field(default=None, alias="documentFormat")
    target_type: str | None = Field(default=None, alias="targetType")
    document_version: str | None = Field(default=None, alias="documentVersion")
    hash: str | None = None


class CreateDocumentResponse(_Lenient):
    document_description: DocumentDescription | None = Field(
        default=None, alias="documentDescription"
    )
