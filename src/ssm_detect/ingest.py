"""Parse at the edge: whatever arrives becomes typed SSM events, ignored records, or bad input.

Accepted shapes, in any mix: an EventBridge envelope (`detail` is the record), a bare CloudTrail
record, a CloudTrail S3 log object (`{"Records": [...]}`), and a JSON array of any of these.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from ssm_detect.models.cloudtrail import SSM_EVENT_SOURCE, CloudTrailRecord, EventBridgeEnvelope
from ssm_detect.models.repair import MAX_REPAIRS, MalformedFieldsError, located, repair
from ssm_detect.principal import PrincipalKeying
from ssm_detect.ssm_event import SsmEvent, to_ssm_event

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
_MAX_REASON = 300
# Lists a payload may nest (an array of S3 log objects is two); deeper is bad input.
MAX_LIST_NESTING = 8
_END = object()


@dataclass(frozen=True)
class BadEvent:
    """Input we could not understand: reported, counted and skipped, never raised; or, with
    `judged`, a call judged on its valid fields whose malformed ones are reported."""

    event_id: str
    reason: str
    judged: bool = False


@dataclass(frozen=True)
class Ignored:
    """A well-formed record no detection looks at (another service, another detail-type)."""

    event_id: str


def records_in(payload: object) -> Iterator[dict[str, Any] | BadEvent | Ignored]:
    """The CloudTrail records inside a payload, unparsed, in the order they appear.

    Iterative, with lists open at most `MAX_LIST_NESTING` deep: a payload is a JSON array at
    most two lists deep (an array of `{"Records": [...]}`), and recursing once per level would
    let a few kilobytes of brackets raise RecursionError. A list nested deeper is one bad event.
    """
    open_lists: list[Iterator[object]] = [iter((payload,))]
    while open_lists:
        item = next(open_lists[-1], _END)
        if item is _END:
            open_lists.pop()
            continue
        if isinstance(item, dict) and "Records" in item and not _is_envelope(item):
            item = item["Records"]
            if not isinstance(item, list):
                yield BadEvent("unknown", "`Records` is not a list")
                continue
        if isinstance(item, list):
            # open_lists[0] iterates over the payload itself, not over a list of it
            if len(open_lists) > MAX_LIST_NESTING:
                yield BadEvent("unknown", f"lists nested more than {MAX_LIST_NESTING} deep")
            else:
                open_lists.append(iter(item))
        elif not isinstance(item, dict):
            yield BadEvent("unknown", f"expected a JSON object, got {type(item).__name__}")
        elif _is_envelope(item):
            yield _from_envelope(item)
        else:
            yield item


def _is_envelope(item: dict[str, Any]) -> bool:
    return "detail-type" in item or "detail" in item


def to_event(raw: dict[str, Any], keying: PrincipalKeying) -> SsmEvent | BadEvent | Ignored:
    """Validate one raw record; the cheap source check runs first so replays stay fast."""
    event_id = event_id_of(raw)
    source = raw.get("eventSource")
    if source is None:
        return BadEvent(event_id, "not a CloudTrail record: no eventSource")
    if source != SSM_EVENT_SOURCE:
        return Ignored(event_id)
    try:
        _check_encodable(raw)
        return _judgeable(raw, keying)
    except (ValidationError, TypeError, ValueError) as error:
        return BadEvent(event_id, describe_error(error))


def _judgeable(raw: dict[str, Any], keying: PrincipalKeying) -> SsmEvent:
    """The event, with malformed fields bounded or left out and named (`models.repair`: fail
    toward detection); raises the first error when a field every detection needs is malformed."""
    work, malformed = raw, list[str]()
    first_error: Exception | None = None
    failure: Exception
    for _ in range(MAX_REPAIRS + 1):
        try:
            event = to_ssm_event(CloudTrailRecord.model_validate(work), keying)
        except ValidationError as error:
            errors, failure = located(error), error
        except MalformedFieldsError as error:
            errors, failure = list(error.errors), error
        else:
            return replace(event, malformed_fields=tuple(dict.fromkeys(malformed)))
        first_error = first_error or failure
        try:
            work, names = repair(work, errors)
        except ValueError:
            raise failure from None
        if not names:
            break
        malformed.extend(names)
    raise first_error or ValueError("malformed fields could not be repaired")


def _check_encodable(raw: dict[str, Any]) -> None:
    """JSON admits lone surrogates (\\ud800) that no AWS API can encode: make them bad input
    here (UnicodeEncodeError is a ValueError), not a crash at the first boto3 call. Free-text
    fields nested too deep to serialise are left to the models, which tolerate them."""
    try:
        json.dumps(raw, ensure_ascii=False).encode()
    except RecursionError:
        return


def event_id_of(raw: object) -> str:
    """The CloudTrail eventID (or envelope id) for log lines; safe on any input."""
    if isinstance(raw, dict):
        for name in ("eventID", "id"):
            value = raw.get(name)
            if isinstance(value, str) and value:
                # It is printed in log lines: keep it to one line of printable characters.
                return "".join(c if c.isprintable() else "?" for c in value[:128])
    return "unknown"


def describe_error(error: Exception) -> str:
    """A short, single-line reason that never echoes input values (they may be secrets)."""
    if isinstance(error, MalformedFieldsError):
        text = str(error)
    elif isinstance(error, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)[:3]
        ]
        text = "; ".join(parts)
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:_MAX_REASON]


def _from_envelope(payload: dict[str, Any]) -> dict[str, Any] | BadEvent | Ignored:
    try:
        envelope = EventBridgeEnvelope.model_validate(payload)
    except ValidationError as error:
        return BadEvent(event_id_of(payload), f"bad EventBridge envelope: {describe_error(error)}")
    if envelope.detail_type != CLOUDTRAIL_DETAIL_TYPE:
        return Ignored(event_id_of(envelope.detail) if envelope.detail else envelope.id)
    return envelope.detail
