"""Bounds on what one record may hold, so that hostile or corrupted input is bad input (or is cut
down) at the edge, never a crash or an AWS error further on.

Two kinds of field need them:

- **Key parts** (account, principal key, document name). State and ledger items are keyed
  `<kind>#<account>#<part>`, and DynamoDB rejects a partition key over 2,048 bytes with a
  ValidationException: to Lambda that is an AWS failure, so the event would be retried and then
  dead-lettered although it can never succeed. An account id is exactly 12 digits; the other
  parts are bounded at `MAX_KEY_PART_BYTES` of UTF-8, which leaves 2,048 - 12 - 1,024 = 1,012
  bytes for the `<kind>#` prefix and separators (the longest today,
  `ledger#AWS.SSM.RareCommandDocumentCreator#`, is 42). No real value comes near the bound: IAM
  names are at most 64 characters and paths 512, so a role or user ARN is under 650 characters
  (IAM's documented ARN maximum of 2,048 is a field size, not something IAM lets one build), and
  SSM document names are at most 128 ASCII characters. A key part past its bound is not bad
  input: `models/repair.py` cuts it (a name) or leaves it out (an account id, an unreadable
  caller) and names it, and the call is judged on the rest (fail toward detection).
- **Free-form JSON** that CloudTrail copies from the caller (SendCommand `parameters`,
  CreateDocument `content` and `tags`). Serialising it (json.dumps, pydantic) recurses once per
  level, so a few kilobytes of brackets raise RecursionError. Such a call still ran, so it is
  not bad input: the value is kept down to `MAX_NESTING` levels and anything deeper is replaced
  by `DEPTH_MARKER`, and the detections say so in the finding (`nesting_truncated`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StringConstraints

# A DynamoDB partition key is at most 2,048 bytes; see the module docstring for the split.
MAX_KEY_PART_BYTES = 1024
# Real documents and parameters nest a handful of levels (mainSteps > inputs > runCommand).
# Below content_inspection's 64, so a cut-down document is still parsed and inspected.
MAX_NESTING = 32
# No brackets: content_inspection estimates nesting by counting them.
DEPTH_MARKER = f"<nested deeper than {MAX_NESTING} levels>"


def within_key_bytes(value: str) -> str:
    """Raise ValueError (bad input) for text too long to be part of a DynamoDB key."""
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_PART_BYTES:
        # The value itself is not quoted: reasons reach logs, and input may hold secrets.
        raise ValueError(f"{size} bytes exceed the key bound of {MAX_KEY_PART_BYTES}")
    return value


def bound_nesting(value: object) -> object:
    """`value` itself when it nests at most `MAX_NESTING` levels, else a copy in which every
    list or object deeper than that is replaced by `DEPTH_MARKER`."""
    if _deeper_than(value, MAX_NESTING):
        return _cut(value, MAX_NESTING)
    return value


def nesting_truncated(value: object) -> bool:
    """Whether `bound_nesting` cut something out of `value` (or the caller sent the marker)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if node == DEPTH_MARKER:
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _deeper_than(value: object, limit: int) -> bool:
    """Iterative: the value may be nested far beyond the recursion limit."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth >= limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)
    return False


def _cut(value: object, levels: int) -> object:
    # Recursion is bounded by `levels` (MAX_NESTING), not by the input.
    if not isinstance(value, dict | list):
        return value
    if levels == 0:
        return DEPTH_MARKER
    if isinstance(value, dict):
        return {key: _cut(child, levels - 1) for key, child in value.items()}
    return [_cut(child, levels - 1) for child in value]


AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
"""An AWS account id: exactly 12 ASCII digits (`\\d` would admit other scripts' digits)."""
KeyPart = Annotated[str, AfterValidator(within_key_bytes)]
"""Text that becomes part of a state or ledger key (document names)."""
FreeFormJson = Annotated[Any, BeforeValidator(bound_nesting)]
"""A caller-supplied JSON value, cut down to `MAX_NESTING` levels."""
