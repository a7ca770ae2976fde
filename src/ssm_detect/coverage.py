"""`ssm-detect coverage`: which accounts and regions are watched, from the heartbeats.

Watched: a heartbeat within the silence limit. Silent: heartbeats once, none within the limit.
Unwatched: expected (every enabled region of every active account, from AWS Organizations and
`account:ListRegions`, or from a file) but never heard from. Unexpected: heard from but not in
the expected set (a stale entry, or an account the list missed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ssm_detect.heartbeat import Source

ENABLED = ("ENABLED", "ENABLED_BY_DEFAULT")


@dataclass
class Coverage:
    watched: dict[Source, datetime] = field(default_factory=dict)
    silent: dict[Source, datetime] = field(default_factory=dict)
    unwatched: list[Source] = field(default_factory=list)
    unexpected: list[Source] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.silent or self.unwatched)

    def lines(self) -> list[str]:
        rows = [
            f"WATCHED    {s.account} {s.region}  last {at.isoformat()}"
            for s, at in sorted(self.watched.items())
        ]
        rows += [
            f"SILENT     {s.account} {s.region}  last {at.isoformat()}"
            for s, at in sorted(self.silent.items())
        ]
        rows += [f"UNWATCHED  {s.account} {s.region}  no heartbeat ever" for s in self.unwatched]
        rows += [
            f"UNEXPECTED {s.account} {s.region}  not in the expected list" for s in self.unexpected
        ]
        rows.append(
            f"{len(self.watched)} watched, {len(self.silent)} silent, "
            f"{len(self.unwatched)} unwatched, {len(self.unexpected)} unexpected"
        )
        return rows


def coverage(
    latest: Mapping[Source, datetime],
    expected: Iterable[Source] | None,
    now: datetime,
    limit: timedelta,
) -> Coverage:
    result = Coverage()
    for source, at in sorted(latest.items()):
        (result.watched if now - at <= limit else result.silent)[source] = at
    if expected is not None:
        wanted = set(expected)
        result.unwatched = sorted(wanted - set(latest))
        result.unexpected = sorted(set(latest) - wanted)
    return result


def expected_from_file(path: Path) -> list[Source]:
    """A JSON object: account id -> list of regions (what ListRegions gives per account)."""
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict) or not all(
        isinstance(regions, list) and all(isinstance(r, str) for r in regions)
        for regions in raw.values()
    ):
        raise ValueError(f"{path}: expected a JSON object of account id -> list of regions")
    return [Source(str(account), region) for account, regions in raw.items() for region in regions]


def expected_from_organization(organizations: Any, account: Any, own_account: str) -> list[Source]:
    """Every enabled region of every active account (run in the management account or a
    delegated administrator of AWS Account Management). Regions an SCP denies are still
    listed as enabled: exclude them with --exclude-region."""
    sources = []
    for page in organizations.get_paginator("list_accounts").paginate():
        for member in page["Accounts"]:
            if member.get("Status", "ACTIVE") != "ACTIVE":
                continue
            sources += [
                Source(member["Id"], r) for r in _regions(account, member["Id"], own_account)
            ]
    return sources


def _regions(account: Any, account_id: str, own_account: str) -> list[str]:
    # ListRegions refuses AccountId for the caller's own account
    extra = {} if account_id == own_account else {"AccountId": account_id}
    regions = []
    for page in account.get_paginator("list_regions").paginate(
        RegionOptStatusContains=list(ENABLED), **extra
    ):
        regions += [r["RegionName"] for r in page["Regions"]]
    return regions
