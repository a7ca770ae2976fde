"""CloudTrail's `LookupEvents` API as a record source, for accounts without S3 exports.

LookupEvents returns the last 90 days of management events of one region, newest first, 50
per page, at most 2 requests a second per account and region. It takes one lookup attribute per
request, so we ask by event name for the two calls any detection keeps state for, rather than
`EventSource=ssm.amazonaws.com`: that would also page through every agent heartbeat
(`UpdateInstanceInformation` every few minutes per managed node), often hundreds of times more
events, at 50 per request. Each result's `CloudTrailEvent` is the record as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from ssm_detect.replay.sources import Problem, RawRecord, SourceItem

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail.client import CloudTrailClient

# The SSM calls that detections parse and keep state for (see ssm_event._call_of).
SEEDED_EVENT_NAMES = ("SendCommand", "CreateDocument")
MAX_LOOKBACK_DAYS = 90


def cloudtrail_client(region: str | None) -> CloudTrailClient:
    import boto3  # noqa: PLC0415 - only seed-history --from-lookup-events needs it
    from botocore.config import Config  # noqa: PLC0415

    # LookupEvents is throttled at 2 requests a second: standard retries back off and go on.
    config = Config(retries={"mode": "standard", "max_attempts": 10})
    return boto3.client("cloudtrail", region_name=region, config=config)


def lookup_records(
    client: CloudTrailClient,
    start: datetime,
    end: datetime,
    event_names: tuple[str, ...] = SEEDED_EVENT_NAMES,
) -> Iterator[SourceItem]:
    """Every record LookupEvents has for `event_names` between `start` and `end`, positioned as
    `LookupEvents(EventName=X):page N:Events[i]`. Errors from the API propagate."""
    paginator = client.get_paginator("lookup_events")
    for name in event_names:
        pages = paginator.paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}],
            StartTime=start,
            EndTime=end,
        )
        for page_number, page in enumerate(pages, start=1):
            for index, event in enumerate(page.get("Events", [])):
                origin = f"LookupEvents(EventName={name}):page {page_number}:Events[{index}]"
                yield _record(origin, event.get("CloudTrailEvent"))


def _record(origin: str, text: str | None) -> SourceItem:
    if not text:
        return Problem(origin, "no CloudTrailEvent in the result")
    try:
        return RawRecord(origin, json.loads(text))
    except ValueError as error:
        return Problem(origin, f"CloudTrailEvent is not JSON: {error}")
