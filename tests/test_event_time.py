"""`eventTime` in every spelling we meet becomes an aware UTC datetime, or a ValueError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ssm_detect.models.event_time import parse_event_time, to_epoch

MOMENT = datetime(2025, 2, 19, 16, 32, 39, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-02-19T16:32:39Z", MOMENT),
        ("2025-02-19T16:32:39z", MOMENT),
        ("2025-02-19T16:32:39.123Z", MOMENT.replace(microsecond=123000)),
        ("2025-02-19T16:32:39.000Z", MOMENT),
        ("2025-02-19 16:32:39.000000000", MOMENT),
        ("2025-02-19 16:32:39.123456789", MOMENT.replace(microsecond=123456)),
        ("2025-02-19T16:32:39+00:00", MOMENT),
        ("2025-02-19T18:32:39+02:00", MOMENT),
        ("2025-02-19T11:32:39-05:00", MOMENT),
        ("2025-02-19T18:32:39.500+02:00", MOMENT.replace(microsecond=500000)),
        ("2025-02-19T16:32:39", MOMENT),
        ("  2025-02-19T16:32:39Z  ", MOMENT),
    ],
)
def test_event_time_spellings_parse_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_event_time(text)

    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_event_time_naive_text_is_utc_not_local() -> None:
    parsed = parse_event_time("2025-02-19T16:32:39")

    assert parsed.tzinfo is not None
    assert to_epoch(parsed) == to_epoch(MOMENT)


def test_event_time_nanosecond_form_equals_cloudtrail_form() -> None:
    assert parse_event_time("2025-02-19 16:32:39.000000000") == parse_event_time(
        "2025-02-19T16:32:39Z"
    )


def test_event_time_aware_datetime_is_converted_to_utc() -> None:
    plus_two = datetime(2025, 2, 19, 18, 32, 39, tzinfo=timezone(timedelta(hours=2)))

    parsed = parse_event_time(plus_two)

    assert parsed == MOMENT
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "yesterday afternoon",
        "2025-13-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2025-02-19T25:00:00Z",
        "2025/02/19 16:32:39",
        "16:32:39",
        "2025-02-19T16:32:39+99:00",
        "Z",
    ],
)
def test_event_time_garbage_is_rejected_with_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="eventTime"):
        parse_event_time(text)


@pytest.mark.parametrize(
    "text",
    [
        "1999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2201-01-01T00:00:00Z",
        "9999-01-01T00:00:00Z",
    ],
)
def test_event_time_out_of_range_year_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_event_time(text)


def test_event_time_range_bounds_are_inclusive() -> None:
    assert parse_event_time("2000-01-01T00:00:00Z").year == 2000
    assert parse_event_time("2200-12-31T23:59:59Z").year == 2200


def test_event_time_offset_moving_year_out_of_range_is_rejected() -> None:
    # 2000-01-01T00:30 at +01:00 is 1999-12-31T23:30 UTC: the range applies to the UTC time.
    with pytest.raises(ValueError, match="out of range"):
        parse_event_time("2000-01-01T00:30:00+01:00")


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_event_time_offset_beyond_datetime_limits_is_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="eventTime"):
        parse_event_time(text)


@pytest.mark.parametrize("value", [None, 1739982759, 1739982759.0, True, [], {}, b"2025-02-19"])
def test_event_time_non_string_is_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_event_time(value)


def test_event_time_to_epoch_is_whole_utc_seconds() -> None:
    assert to_epoch(parse_event_time("2025-02-19T16:32:39.999Z")) == to_epoch(MOMENT)
    assert to_epoch(MOMENT) == int((MOMENT - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
