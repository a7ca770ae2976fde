"""Fail toward detection: a recognised SSM call with an odd field is judged on what is valid.

Validation reports every field it refuses (pydantic's error locations). A field no detection
needs in order to fire is not a reason to drop the call: `repair` takes the raw record and those
locations and returns a copy in which each refused field is bounded (an overlong string or list
cut to its bound) or, when it cannot be, left out (a list entry removed, a field removed, an
unreadable `userIdentity` replaced by an empty one), and names what it changed. The caller
validates the copy again; the event is judged, and its findings and its log line name the
fields (`malformed_fields`). The stateful detections key on the account and the principal: when
either is among them, they skip the event and the log line says why (`SsmEvent.unkeyed_reason`).

Only the fields every detection needs make a record bad input: `eventID`, `eventTime`,
`eventSource`, `eventName` and `errorCode` (success or failure is the first thing judged).
Values are never echoed: names are the field paths, not their contents.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

MAX_TARGETS = 50  # ssm_calls.MAX_TARGETS (not imported: the models import this module)
REQUIRED = frozenset({"eventID", "eventTime", "eventSource", "eventName", "errorCode"})
"""What a detection needs to judge a call at all."""
MAX_REPAIRS = 4
_CUT_DEFAULT = 256
_TOO_LONG = frozenset({"string_too_long", "too_long"})

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldError:
    location: Location
    kind: str
    max_length: int | None = None


class MalformedFieldsError(ValueError):
    """Field errors of one record, located from the record's root."""

    def __init__(self, errors: Sequence[FieldError], reason: str) -> None:
        super().__init__(reason)
        self.errors = tuple(errors)


def located(error: ValidationError, prefix: Location = ()) -> list[FieldError]:
    found = []
    for item in error.errors(include_input=False, include_url=False):
        ctx = item.get("ctx") or {}
        limit = ctx.get("max_length")
        found.append(
            FieldError(
                location=(*prefix, *item["loc"]),
                kind=item["type"],
                max_length=limit if isinstance(limit, int) else None,
            )
        )
    return found


def safe_reason(error: ValidationError, prefix: Location = ()) -> str:
    """A one-line reason naming fields and messages, never input values."""
    parts = [
        f"{'.'.join(str(p) for p in (*prefix, *e['loc'])) or 'record'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)[:3]
    ]
    return " ".join("; ".join(parts).split())


def repair(raw: dict[str, Any], errors: Iterable[FieldError]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `raw` with every refused field bounded or left out, and the fields' names.
    Raises ValueError when a refused field is one every detection needs."""
    fixed = dict(raw)  # copied along each repaired path only: input may nest far too deep
    names: list[str] = []
    removals: list[tuple[list[Any], int, str]] = []
    for error in errors:
        if not error.location or error.location[0] in REQUIRED:
            raise ValueError("a field every detection needs is malformed")
        if error.location == ("userIdentity",) and not isinstance(fixed.get("userIdentity"), dict):
            fixed["userIdentity"] = {}  # absent or not an object: an unknown caller
            names.append("userIdentity")
            continue
        location = error.location
        if "targets" in location:
            # errors inside the targets validator: the list is repaired as a whole (`_fix`)
            location = location[: location.index("targets") + 1]
        found = _walk(fixed, location)
        if found is None:
            continue  # an earlier repair already removed its parent
        container, key, path = found
        if isinstance(container, list) and isinstance(key, int):
            removals.append((container, key, path))
            continue
        if isinstance(container, dict) and isinstance(key, str):
            names.append(path)
            _fix(container, key, error)
    # Entries of one list go from the last, so earlier indices stay valid.
    for container, index, path in sorted(removals, key=lambda r: (id(r[0]), -r[1])):
        if index < len(container):
            del container[index]
            names.append(path)
    return fixed, list(dict.fromkeys(names))


def _walk(root: dict[str, Any], location: Location) -> tuple[Any, str | int, str] | None:
    """The container holding the refused value, its key, and the field's path (union tags that
    pydantic puts in locations, such as `userIdentity.AssumedRole`, are not path steps)."""
    node: Any = root
    parts: list[str] = []
    steps = list(location)
    while steps:
        step = steps.pop(0)
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            key: str | int = step
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            key = step
        elif isinstance(node, dict) and isinstance(step, str) and steps:
            continue  # a union tag or a validator's name, not a key
        else:
            return None  # a missing field (nothing to remove), or already removed
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
        if not steps:
            return node, key, "".join(parts).lstrip(".")
        child = node[key]
        if isinstance(child, dict | list):
            child = copy.copy(child)  # never change the caller's record
            node[key] = child
        node = child
    return None


def _fix(container: dict[str, Any], key: str, error: FieldError) -> None:
    value = container[key]
    limit = min(error.max_length or _CUT_DEFAULT, _CUT_DEFAULT)
    if isinstance(value, str) and _overlong(value, error):
        # 256 characters are at most 1,024 bytes of UTF-8: within every key bound.
        container[key] = value[:limit]
    elif isinstance(value, list) and error.kind in _TOO_LONG:
        container[key] = value[: error.max_length or _CUT_DEFAULT]
    elif key == "targets" and isinstance(value, list) and _usable_targets(value) != value:
        # The targets validator refuses the whole list for one odd entry: keep the usable ones.
        container[key] = _usable_targets(value)
    elif key == "userIdentity":
        container[key] = {}  # an unknown caller is still a caller
    else:
        del container[key]


def _usable_targets(targets: list[Any]) -> list[Any]:
    """Entries shaped like `{"Key": str, "Values": [str, ...]}` (any letter case), at most
    `MAX_TARGETS` of them."""
    usable = []
    for target in targets:
        if not isinstance(target, dict):
            continue
        fields = {str(name).lower(): value for name, value in target.items()}
        values = fields.get("values", [])
        if isinstance(fields.get("key"), str) and (
            isinstance(values, list) and all(isinstance(v, str) for v in values)
        ):
            usable.append(target)
    return usable[:MAX_TARGETS]


def _overlong(value: str, error: FieldError) -> bool:
    """Too long for its field: pydantic's length error, or a key-bound error on a long value
    (a short value refused for its content is left out instead of cut)."""
    return error.kind in _TOO_LONG or (error.kind == "value_error" and len(value) > _CUT_DEFAULT)
