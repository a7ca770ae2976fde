"""CloudTrail where it lives: the log objects of a trail's S3 bucket, for a time range.

CloudTrail writes `[PREFIX/]AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/` + one gzip
object of `{"Records": [...]}` every few minutes per account and region. The walk lists the
folders level by level (`Delimiter="/"`) down to each account's regions, then lists only the day
folders the range needs, so a month of an organisation's trail costs a few thousand LIST calls,
not a listing of the whole bucket. Objects are fetched by a bounded number of threads and read
(prefilter.py) in listing order, at most `2 x fetchers` objects in memory at once.

The day folder is the object's delivery date (UTC). CloudTrail delivers an event within about
15 minutes of the call, so an event of the range's last minutes may be in the next day's folder:
the walk reads day folders from the range's start to `end + DELIVERY_DELAY`. Records outside
the range are counted as ignored by the engine (Intake's window).

A checkpoint (JSON lines, one finished object each: its key, ETag, record count, and the few
records the prefilter kept) makes a long read resumable: run again with the same checkpoint and
only the objects not in it (or changed since) are fetched; the ones in it are read back from it.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ssm_detect.replay.prefilter import Needed
from ssm_detect.replay.sources import (
    FilteredRecords,
    SourceItem,
    is_log_object_name,
    read_object,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

DELIVERY_DELAY = timedelta(hours=1)
"""How long after an event its log object may still be written (CloudTrail: ~15 minutes)."""
DEFAULT_FETCHERS = 16
_ACCOUNT = re.compile(r"^\d{12}$")
_ORGANIZATION = re.compile(r"^o-[a-z0-9]{10,32}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """`s3://BUCKET[/PREFIX]`; ValueError for anything else."""
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url}")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url}")
        return cls(bucket, prefix)

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str


def day_folders(start: datetime, end: datetime) -> list[date]:
    """The delivery dates whose folders can hold events of [start, end)."""
    first, last = start.date(), (end + DELIVERY_DELAY).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def region_folders(client: S3Client, location: S3Location) -> Iterator[str]:
    """Every `.../CloudTrail/REGION/` folder under the location, whatever depth it starts at
    (the bucket, a custom prefix, `AWSLogs/`, an organisation, an account, a region)."""
    prefix = location.prefix
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    parts = [p for p in prefix.split("/") if p]
    if len(parts) >= 2 and parts[-2] == "CloudTrail" and _REGION.match(parts[-1]):
        yield prefix
        return
    for child in _folders(client, location.bucket, prefix):
        name = child.rstrip("/").rsplit("/", 1)[-1]
        if _leads_to_trail(name, parts):
            yield from region_folders(client, S3Location(location.bucket, child))


def _leads_to_trail(name: str, above: list[str]) -> bool:
    """Whether a folder named `name`, below the folders `above`, can hold CloudTrail's
    management-event objects. Digest and Insights folders hold other things."""
    if name == "AWSLogs":
        return True
    if "AWSLogs" not in above:
        return True  # a custom prefix before AWSLogs/: any name
    if above[-1] == "CloudTrail":
        return bool(_REGION.match(name))
    return bool(_ACCOUNT.match(name) or _ORGANIZATION.match(name)) or name == "CloudTrail"


def _folders(client: S3Client, bucket: str, prefix: str) -> Iterator[str]:
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    )
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            if "Prefix" in common:
                yield common["Prefix"]


def list_objects(
    client: S3Client, location: S3Location, start: datetime, end: datetime
) -> Iterator[S3Object]:
    """The log objects of the range, region by region, day by day, in key order."""
    for region in region_folders(client, location):
        for day in day_folders(start, end):
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=location.bucket, Prefix=f"{region}{day:%Y/%m/%d}/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item.get("Key", "")
                    if is_log_object_name(key):
                        yield S3Object(key, item.get("Size", 0), item.get("ETag", ""))


class Checkpoint:
    """Finished objects, appended one line each as they finish, so a stopped read resumes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                entry = self._entry(line)
                if entry is not None:
                    self._done[entry["key"]] = entry
        self._file: IO[str] = path.open("a", encoding="utf-8")

    @staticmethod
    def _entry(line: str) -> dict[str, Any] | None:
        """One line; a line cut short by a stop mid-write is ignored (that object is
        fetched again)."""
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            return entry
        return None

    def finished(self, item: S3Object) -> FilteredRecords | None:
        """The object's records as read before, if it was finished and has not changed."""
        entry = self._done.get(item.key)
        if entry is None or entry.get("etag") != item.etag:
            return None
        needed = [(int(i), text.encode()) for i, text in entry["needed"]]
        return FilteredRecords(entry["origin"], int(entry["total"]), needed)

    def record(self, item: S3Object, records: FilteredRecords) -> None:
        needed = [[index, text.decode()] for index, text in records.needed]
        entry = {
            "key": item.key,
            "etag": item.etag,
            "origin": records.origin,
            "total": records.total,
            "needed": needed,
        }
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def resumed(self) -> int:
        return len(self._done)


@dataclass
class FetchCounts:
    objects: int = 0
    bytes: int = 0
    from_checkpoint: int = 0


def read_objects(
    client: S3Client,
    location: S3Location,
    objects: Iterable[S3Object],
    needed: Needed,
    *,
    fetchers: int = DEFAULT_FETCHERS,
    checkpoint: Checkpoint | None = None,
    counts: FetchCounts | None = None,
) -> Iterator[SourceItem]:
    """Every record of `objects`, in their order, fetched by `fetchers` threads at a time."""
    counts = counts or FetchCounts()

    def fetch(item: S3Object) -> tuple[list[SourceItem], bool]:
        """(the object's items, whether they came from the checkpoint)."""
        if checkpoint is not None and (kept := checkpoint.finished(item)) is not None:
            return [kept], True
        body = client.get_object(Bucket=location.bucket, Key=item.key)["Body"].read()
        return list(read_object(body, location.url(item.key), needed)), False

    with ThreadPoolExecutor(max_workers=fetchers) as pool:
        waiting = iter(objects)
        pending: deque[tuple[S3Object, Future[tuple[list[SourceItem], bool]]]] = deque()

        def submit_next() -> None:
            following = next(waiting, None)
            if following is not None:
                pending.append((following, pool.submit(fetch, following)))

        for _ in range(2 * fetchers):
            submit_next()
        while pending:
            item, future = pending.popleft()
            # An AWS error ends the read here; the checkpoint holds every object before it.
            items, resumed = future.result()
            submit_next()
            counts.objects += 1
            counts.bytes += item.size
            counts.from_checkpoint += resumed
            if checkpoint is not None and not resumed:
                _remember(checkpoint, item, items)
            yield from items


def _remember(checkpoint: Checkpoint, item: S3Object, items: list[SourceItem]) -> None:
    """Only what the prefilter read whole goes in; anything else (an odd object, a damaged one)
    is fetched again on resume, and reported again."""
    if len(items) == 1 and isinstance(items[0], FilteredRecords):
        checkpoint.record(item, items[0])


def s3_client(region: str | None = None) -> S3Client:
    import boto3  # noqa: PLC0415 - only an S3 replay needs it
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        retries={"mode": "adaptive", "max_attempts": 10}, max_pool_connections=DEFAULT_FETCHERS
    )
    return boto3.client("s3", region_name=region, config=config)
