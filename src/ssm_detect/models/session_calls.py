"""Session Manager, Parameter Store reads and hybrid activations: the calls of issue 13.

`StartSession` opens a shell, a tunnel or an interactive command on a managed node;
`GetParameter`, `GetParameters` and `GetParametersByPath` read (and, with `withDecryption`,
decrypt) parameters; `DescribeParameters` lists them; `CreateActivation` mints the code that
lets any machine register as a managed node with an IAM role.

Tolerant as the other call models (fail toward detection): a field of an odd shape that still
has a clear meaning is read for that meaning (a session parameter given as a string instead of a
list of strings, a number where a string was expected); lists are cut at bounds far above the
APIs' own limits, never rejected, and the cut is named (`truncated_fields`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ssm_detect.models.bounds import FreeFormJson, KeyPart, nesting_truncated

# GetParameters takes at most 10 names; parameter names are at most 2,048 characters (an ARN).
MAX_PARAMETER_NAMES = 100
MAX_PARAMETER_NAME_CHARS = 2048
# Session documents take a handful of parameters, each a list of one or a few strings.
MAX_SESSION_PARAMETERS = 50
MAX_SESSION_VALUES = 50
MAX_SESSION_VALUE_CHARS = 64 * 1024  # an interactive command is bounded by the document size
MAX_TEXT_CHARS = 2048  # targets, paths, role names, reasons: far above what the APIs accept


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)


def _scalar_text(raw: object) -> str | None:
    """A string, or the text of a number/boolean; None for anything without one meaning."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool | int | float):
        return str(raw).lower() if isinstance(raw, bool) else str(raw)
    return None


def _names(raw: object) -> tuple[str, ...]:
    """Parameter names from a list (or a lone string), cut to the bounds; other items dropped."""
    items = raw if isinstance(raw, list) else [raw]
    names = (_scalar_text(item) for item in items[:MAX_PARAMETER_NAMES])
    return tuple(n[:MAX_PARAMETER_NAME_CHARS] for n in names if n)


def _optional_text(raw: object) -> str | None:
    text = _scalar_text(raw)
    return text[:MAX_TEXT_CHARS] if text is not None else None


def _optional_int(raw: object) -> int | None:
    """An integer, or the integer a string spells; None for anything else (named by the
    request's `oddities`, never a reason to drop the call)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw.strip())
    return None


def flag_of(raw: object) -> bool | None:
    """A CloudTrail boolean (`true`, or `"true"` from normalising pipelines); None if absent."""
    if raw is None or isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in {"true", "false"}:
        return raw.strip().lower() == "true"
    return None


Text = Annotated[str | None, BeforeValidator(_optional_text)]
OptionalInt = Annotated[int | None, BeforeValidator(_optional_int)]
ParameterNames = Annotated[tuple[str, ...], BeforeValidator(_names)]


# ---- StartSession ---------------------------------------------------------------------------


def session_parameter_values(raw: object) -> dict[str, tuple[str, ...]]:
    """`parameters` as the API defines it (name -> list of strings), read tolerantly: a lone
    string or number is a one-element list; items without a text meaning are dropped."""
    if not isinstance(raw, dict):
        return {}
    values: dict[str, tuple[str, ...]] = {}
    for name, value in list(raw.items())[:MAX_SESSION_PARAMETERS]:
        items = value if isinstance(value, list) else [value]
        texts = (_scalar_text(item) for item in items[:MAX_SESSION_VALUES])
        values[str(name)] = tuple(t[:MAX_SESSION_VALUE_CHARS] for t in texts if t is not None)
    return values


class StartSessionRequest(_Lenient):
    target: Text = None
    document_name: KeyPart | None = Field(default=None, alias="documentName")
    reason: Text = None
    parameters: FreeFormJson = None

    @property
    def parameter_values(self) -> dict[str, tuple[str, ...]]:
        return session_parameter_values(self.parameters)

    @property
    def truncated_fields(self) -> tuple[str, ...]:
        return ("parameters",) if nesting_truncated(self.parameters) else ()


class StartSessionResponse(_Lenient):
    session_id: Text = Field(default=None, alias="sessionId")
    stream_url: Text = Field(default=None, alias="streamUrl")


# ---- Parameter Store reads -------------------------------------------------------------------


class ParameterReadRequest(_Lenient):
    """`GetParameter` (`name`), `GetParameters` (`names`), `GetParametersByPath` (`path`)."""

    name: Text = None
    names: ParameterNames = ()
    path: Text = None
    recursive_raw: FreeFormJson = Field(default=None, alias="recursive")
    with_decryption_raw: FreeFormJson = Field(default=None, alias="withDecryption")
    parameter_filters: FreeFormJson = Field(default=None, alias="parameterFilters")

    @property
    def recursive(self) -> bool:
        return flag_of(self.recursive_raw) is True

    @property
    def decrypts(self) -> bool:
        """`withDecryption` true; an unreadable value counts as true (fail toward detection:
        the call may have decrypted) and is named in `oddities`."""
        flag = flag_of(self.with_decryption_raw)
        return flag is True or (flag is None and self.with_decryption_raw is not None)

    @property
    def oddities(self) -> tuple[str, ...]:
        odd = []
        if self.with_decryption_raw is not None and flag_of(self.with_decryption_raw) is None:
            odd.append("withDecryption is not a boolean (read as true)")
        if self.recursive_raw is not None and flag_of(self.recursive_raw) is None:
            odd.append("recursive is not a boolean (read as false)")
        return tuple(odd)


class DescribeParametersRequest(_Lenient):
    filters: FreeFormJson = None
    parameter_filters: FreeFormJson = Field(default=None, alias="parameterFilters")
    shared: bool | None = None


# ---- CreateActivation ------------------------------------------------------------------------


class CreateActivationRequest(_Lenient):
    iam_role: Text = Field(default=None, alias="iamRole")
    registration_limit: OptionalInt = Field(default=None, alias="registrationLimit")
    expiration_date: Text = Field(default=None, alias="expirationDate")
    default_instance_name: Text = Field(default=None, alias="defaultInstanceName")
    description: Text = None
    tags: FreeFormJson = None
    registration_metadata: FreeFormJson = Field(default=None, alias="registrationMetadata")


class CreateActivationResponse(_Lenient):
    activation_id: Text = Field(default=None, alias="activationId")
