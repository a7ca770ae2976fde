"""CloudTrail event times, in every spelling we meet.

CloudTrail writes `2025-02-19T16:32:39Z`; pipelines that normalise logs (Panther, some SIEM
exports) write `2025-02-19 16:32:39.000000000` with nanoseconds and no zone. Both mean UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator

# Years outside this range are not CloudTrail (it started in 2013) and would overflow the
# epoch arithmetic the state store does; we reject them as bad input.
_EARLIEST_YEAR = 2000
_LATEST_YEAR = 2200


def parse_event_time(value: object) -> datetime:
    """Return an aware UTC datetime for a CloudTrail `eventTime` value, or raise ValueError."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = _parse_text(value)
    else:
        raise ValueError(f"eventTime must be a string, got {type(value).__name__}")
    try:
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+01:00: the offset moves it outside datetime's range
        raise ValueError("eventTime is out of range") from None
    if not _EARLIEST_YEAR <= parsed.year <= _LATEST_YEAR:
        raise ValueError(f"eventTime year {parsed.year} is out of range")
    return parsed


def _parse_text(text: str) -> datetime:
    cleaned = text.strip().replace(" ", "T", 1)
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    date_part, sep, rest = cleaned.partition(".")
    if sep:
        # Python parses at most microseconds; normalised logs carry nanoseconds.
        digits = len(rest) - len(rest.lstrip("0123456789"))
        cleaned = f"{date_part}.{rest[: min(digits, 6)]}{rest[digits:]}"
        if digits == 0:
            cleaned = date_part + rest
    try:
        return datetime.fromisoformat(cleaned)
    except ValueError:
        # The value is not quoted back: error reasons reach logs, and input may hold secrets.
        raise ValueError("eventTime is not an ISO 8601 time") from None


def to_epoch(moment: datetime) -> int:
    """Whole seconds since the epoch; CloudTrail times have second precision."""
    return int(moment.timestamp())


EventTime = Annotated[datetime, BeforeValidator(parse_event_time)]
