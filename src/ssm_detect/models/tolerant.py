"""Call models that judge a record on what is valid in it (fail toward detection).

A recognised SSM call with one odd field (a number where a name belongs, a target that is not
an object) still ran: the detections must see it. `TolerantCall` validates the record; if some
fields do not fit, it validates again without them and names them in `malformed_fields`, which
the detections copy into the finding. Only fields the model declares are ever dropped.

The field types below also cut rather than reject: a name is at most `MAX_NAME_CHARS`
characters (document, association and window names are at most 128; the cut keeps any of them
far under the state-key bound of models/bounds.py), a list at most `MAX_ITEMS` entries.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)

from ssm_detect.models.ssm_calls import MAX_TARGETS, Target

MAX_NAME_CHARS = 256
MAX_TEXT_CHARS = 4096
MAX_ITEMS = 1000
MALFORMED = "__ssm_detect_malformed__"


def _as_name(raw: object) -> object:
    return raw[:MAX_NAME_CHARS] if isinstance(raw, str) else raw


def _as_text(raw: object) -> object:
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, int | float):
        return str(raw)
    return raw[:MAX_TEXT_CHARS] if isinstance(raw, str) else raw


def _as_names(raw: object) -> object:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw[:MAX_NAME_CHARS],)
    if isinstance(raw, list | tuple):
        return tuple(_as_name(item) for item in raw[:MAX_ITEMS])
    return raw


def _as_targets(raw: object) -> object:
    """Targets in any letter case, cut at the API's bound instead of rejected."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return raw  # not a list: validation names the field malformed
    try:
        return tuple(Target.from_raw(item) for item in raw[:MAX_TARGETS])
    except (TypeError, ValueError):
        return raw  # an entry that is not a target: the same


Name = Annotated[str, BeforeValidator(_as_name)]
Text = Annotated[str, BeforeValidator(_as_text)]
Names = Annotated[tuple[Name, ...], BeforeValidator(_as_names)]
Targets = Annotated[tuple[Target, ...], BeforeValidator(_as_targets)]


class TolerantCall(BaseModel):
    """A request or response: unknown fields kept, odd declared fields dropped and named."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)

    malformed_fields: tuple[str, ...] = Field(default=(), alias=MALFORMED)

    @model_validator(mode="wrap")
    @classmethod
    def _drop_what_does_not_fit(
        cls, data: Any, handler: ModelWrapValidatorHandler[TolerantCall]
    ) -> TolerantCall:
        try:
            return handler(data)
        except ValidationError as error:
            if not isinstance(data, dict):
                raise
            bad = sorted({str(e["loc"][0]) for e in error.errors() if e["loc"]})
            kept = {key: value for key, value in data.items() if key not in bad}
            kept[MALFORMED] = tuple(bad)
            return handler(kept)
