"""What matched, and where in the content: the evidence a notification shows first.

Detections that read document content or visible command parameters list their hits in the
context (`content_findings`, `parameter_findings`: rule, what it means, line number, the line).
A notification shows every hit, then an excerpt of the content cut *around* the hits, so padding
placed before a payload cannot push it out of view, and says how much of the content it shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ssm_detect.findings import Finding

HIT_KEYS = ("content_findings", "parameter_findings")
CONTENT_KEY = "content"
CONTENT_LENGTH_KEY = "content_length"
MAX_HITS = 20
_NEEDLE = 80


@dataclass(frozen=True)
class Hit:
    source: str
    """`content` (document content) or `parameters` (SendCommand's visible parameters)."""
    rule: str
    what: str
    line_number: int | None
    line: str


@dataclass(frozen=True)
class Excerpt:
    text: str
    shown: int
    """Characters of the content in `text` (markers excluded)."""
    total: int
    """Characters of the content CloudTrail recorded (when the producer kept fewer, its count)."""

    @property
    def note(self) -> str:
        return f"shown: {self.shown} of {self.total} characters"


def hits(finding: Finding) -> list[Hit]:
    """Every content and parameter hit in the finding's context, in the producer's order."""
    found: list[Hit] = []
    for key in HIT_KEYS:
        raw = finding.context.get(key)
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            continue
        source = "parameters" if key == "parameter_findings" else "content"
        found += [_hit(source, entry) for entry in raw if isinstance(entry, Mapping)]
    return found[:MAX_HITS]


def _hit(source: str, entry: Mapping[str, object]) -> Hit:
    number = entry.get("line_number")
    return Hit(
        source=source,
        rule=str(entry.get("rule") or "?"),
        what=str(entry.get("what") or ""),
        line_number=number if isinstance(number, int) and not isinstance(number, bool) else None,
        line=str(entry.get("line") or ""),
    )


def content_of(finding: Finding) -> str | None:
    content = finding.context.get(CONTENT_KEY)
    if isinstance(content, str) and content:
        return content
    return None


def content_total(finding: Finding, content: str) -> int:
    """The recorded content's length: the producer's count when it kept only a prefix."""
    total = finding.context.get(CONTENT_LENGTH_KEY)
    if isinstance(total, int) and not isinstance(total, bool) and total >= len(content):
        return total
    return len(content)


def excerpt(content: str, found: Sequence[Hit], limit: int, total: int | None = None) -> Excerpt:
    """At most `limit` characters of `content`: all of it when it fits, else whole lines around
    each hit (split evenly between the hits that can be located), else its beginning.

    Gaps are marked with a line `[… N characters …]`; `shown` counts content characters only.
    """
    total = max(total or 0, len(content))
    if len(content) <= limit:
        return Excerpt(content, len(content), total)
    spans = _hit_spans(content, found)
    if not spans:
        return Excerpt(content[:limit], limit, total)
    room = max(limit // len(spans), 1)
    windows = _merge([_window(content, start, end, room) for start, end in spans])
    pieces: list[str] = []
    shown = 0
    cursor = 0
    for start, end in windows:
        if start > cursor:
            pieces.append(f"[… {start - cursor} characters …]")
        pieces.append(content[start:end])
        shown += end - start
        cursor = end
    if cursor < len(content):
        pieces.append(f"[… {len(content) - cursor} characters …]")
    return Excerpt("\n".join(pieces), shown, total)


def _hit_spans(content: str, found: Sequence[Hit]) -> list[tuple[int, int]]:
    """Where each hit's line is in the raw content (as written, or JSON-escaped)."""
    spans: list[tuple[int, int]] = []
    for hit in found:
        line = hit.line.strip()
        if not line:
            continue
        for needle in (line[:_NEEDLE], json.dumps(line, ensure_ascii=False)[1:-1][:_NEEDLE]):
            position = content.find(needle)
            if position >= 0:
                spans.append((position, position + len(needle)))
                break
    return sorted(set(spans))


def _window(content: str, start: int, end: int, room: int) -> tuple[int, int]:
    """At most `room` characters around [start, end), the hit centred, trimmed to whole lines
    where a line break falls between the window's edge and the hit."""
    length = min(room, len(content))
    low = max(min(start - max(length - (end - start), 0) // 2, len(content) - length), 0)
    high = min(low + length, len(content))
    first_break = content.find("\n", low, start)
    if low > 0 and first_break >= 0:
        low = first_break + 1
    last_break = content.rfind("\n", end, high)
    if high < len(content) and last_break >= 0:
        high = last_break
    return low, max(high, low)


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
