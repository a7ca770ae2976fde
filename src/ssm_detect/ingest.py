"""Parse at the edge: whatever arrives becomes typed SSM events, ignored records, or bad input.

Accepted shapes, in any mix: an EventBridge envelope (`detail` is the record), a bare CloudTrail
record, a CloudTrail S3 log object (`{"Records": [...]}`), and a JSON array of any of these.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ssm_detect.models.cloudtrail import SSM_EVENT_SOURCE, CloudTrailRecord, EventBridgeEnvelope
from ssm_detect.principal import PrincipalKeying
from ssm_detect.ssm_event import SsmEvent, to_ssm_event

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
_MAX_REASON = 300


@dataclass(frozen=True)
class BadEvent:
    """Input we could not understand: reported, counted and skipped, never raised."""

    event_id: str
    reason: str


@dataclass(frozen=True)
class Ignored:
    """A well-formed record no detection looks at (another service, another detail-type)."""

    event_id: str


def records_in(payload: object) -> Iterator[dict[str, Any] | BadEvent | Ignored]:
    """The CloudTrail records inside a payload, unparsed, in the order they appear."""
    if isinstance(payload, list):
        for item in payload:
            yield from records_in(item)
    elif not isinstance(payload, dict):
        yield BadEvent("unknown", f"expected a JSON object, got {type(payload).__name__}")
    elif "detail-type" in payload or "detail" in payload:
        yield _from_envelope(payload)
    elif "Records" in payload:
        records = payload["Records"]
        if isinstance(records, list):
            yield from records_in(records)
        else:
            yield BadEvent("unknown", "`Records` is not a list")
    else:
        yield payload


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
        return to_ssm_event(CloudTrailRecord.model_validate(raw), keying)
    except (ValidationError, TypeError, ValueError) as error:
        return BadEvent(event_id, describe_error(error))


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
    if isinstance(error, ValidationError):
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
