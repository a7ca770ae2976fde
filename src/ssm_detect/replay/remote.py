"""Reading CloudTrail where it lives into an Intake: an S3 trail bucket, or an Athena query.

The command line (cli.py) picks the source; what comes out is the Intake the file reader makes,
so detection, seeding and reports are the same whatever was read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ssm_detect.principal import PrincipalKeying
from ssm_detect.replay import athena, s3
from ssm_detect.replay.engine import Intake, Window
from ssm_detect.replay.ordering import DEFAULT_MAX_HELD_BYTES
from ssm_detect.replay.prefilter import needs_parsing
from ssm_detect.replay.sources import FilteredRecords, RecordList, SourceItem

Status = Callable[[str], None]
"""Where a one-line progress report goes (a terminal's status line); called at most twice a
second."""


@dataclass(frozen=True)
class S3Options:
    fetchers: int = s3.DEFAULT_FETCHERS
    checkpoint: Path | None = None
    region: str | None = None


def read_s3(
    urls: Sequence[str],
    keying: PrincipalKeying,
    window: Window,
    options: S3Options,
    *,
    max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
    event_names: frozenset[str] | None = None,
    status: Status | None = None,
) -> tuple[Intake, int]:
    """Every log object of the range under each `s3://` URL; the Intake and the object count.
    AWS errors propagate: the checkpoint (if any) holds what was finished."""
    client = s3.s3_client(options.region)
    intake = Intake(keying, max_held_bytes=max_held_bytes, window=window)
    counts = s3.FetchCounts()
    checkpoint = s3.Checkpoint(options.checkpoint) if options.checkpoint else None
    try:
        for url in urls:
            location = s3.S3Location.parse(url)
            objects = s3.list_objects(client, location, *window)
            items = s3.read_objects(
                client,
                location,
                objects,
                needs_parsing(event_names),
                fetchers=options.fetchers,
                checkpoint=checkpoint,
                counts=counts,
            )
            intake.add(_reporting(items, counts, intake, status))
    finally:
        if checkpoint is not None:
            checkpoint.close()
    if status is not None:
        status(_line(counts, intake) + "\n")
    return intake, counts.objects


def _reporting(
    items: Iterator[SourceItem], counts: s3.FetchCounts, intake: Intake, status: Status | None
) -> Iterator[SourceItem]:
    last = 0.0
    for item in items:
        yield item
        now = time.monotonic()
        if status is not None and isinstance(item, FilteredRecords | RecordList) and now > last:
            status("\r" + _line(counts, intake))
            last = now + 0.5


def _line(counts: s3.FetchCounts, intake: Intake) -> str:
    resumed = f" ({counts.from_checkpoint} from the checkpoint)" if counts.from_checkpoint else ""
    return (
        f"s3: {counts.objects:,} objects{resumed}, {counts.bytes / 1e6:,.1f} MB, "
        f"{intake.summary.events_seen:,} records, {intake.held:,} SSM kept"
    )


@dataclass(frozen=True)
class AthenaOptions:
    workgroup: str | None = None
    output_location: str | None = None
    partition_column: str = "timestamp"
    region: str | None = None


def read_athena(
    table: str,
    keying: PrincipalKeying,
    window: Window,
    options: AthenaOptions,
    *,
    max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
    event_names: frozenset[str] | None = None,
    status: Status | None = None,
) -> tuple[Intake, str]:
    """One query's SSM rows as records; the Intake and the query's execution id."""
    where = athena.AthenaTable.parse(table)
    query = athena.query_text(where, *window, event_names, options.partition_column)
    client = athena.athena_client(options.region)
    if status is not None:
        status(f"athena: running the query on {table}\n")
    execution = athena.run_query(
        client,
        query,
        where.database,
        workgroup=options.workgroup,
        output_location=options.output_location,
    )
    intake = Intake(keying, max_held_bytes=max_held_bytes, window=window)
    intake.add(athena.result_records(client, execution))
    if status is not None:
        status(f"athena: query {execution}: {intake.summary.events_seen:,} rows\n")
    return intake, execution
