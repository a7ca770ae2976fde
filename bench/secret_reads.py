"""What the read-only rule's events cost in state: DynamoDB write units per decrypting read.

`python -m bench.secret_reads` runs three streams of parameter reads through the real pipeline
(only AWS.SSM.SecureStringHarvesting; state in the in-memory store, which has DynamoDB's
semantics) and sizes the state item after every write with DynamoDB's item-size rule
(bench.calls.item_size): an UpdateItem costs one write unit per started KB of the larger of the
item before and after. Then the cost per million delivered events at list prices
(bench.cost.PRICES), Lambda at the function's measured warm duration (docs/performance.md).

Streams (event time, so a day of reads takes no wall time):
- workload: one role reads its own five SecureStrings every minute for 48 hours;
- workload, allowlisted: the same role in ALLOWLIST_JSON for this detection (no state call);
- stratus: DescribeParameters, then 30 names in batches of 10, repeated hourly for 48 hours.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.calls import item_size
from bench.cost import PRICES
from detections.securestring_harvesting import METADATA, SecureStringHarvestingDetection
from ssm_detect.ingest import to_event
from ssm_detect.pipeline import Pipeline
from ssm_detect.settings import Allowlist, AllowRule, Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.base import StateSnapshot, StateUpdate
from ssm_detect.state.memory import MemoryStateStore

START = datetime(2025, 3, 6, tzinfo=UTC)
HOURS = 48
WARM_BILLED_MS = 25.0  # docs/performance.md: the corpus stream's billed mean, rounded up
MEMORY_GB = 256 / 1024


class SizedStore(MemoryStateStore):
    """The in-memory store, counting calls and the write units DynamoDB would bill."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.write_units = 0
        self._sizes: dict[str, int] = {}

    def apply(self, update: StateUpdate) -> StateSnapshot:
        before = self._sizes.get(update.key, 0)
        snapshot = super().apply(update)
        after = _size(update.key, snapshot)
        self._sizes[update.key] = after
        self.calls += 1
        self.write_units += max(1, -(-max(before, after) // 1024))
        return snapshot


def _size(key: str, snapshot: StateSnapshot) -> int:
    item: dict[str, Any] = {"pk": {"S": key}, "expires_at": {"N": "1741392000"}}
    item |= {name: {"SS": sorted(held)} for name, held in snapshot.items()}
    return item_size(item)


def _record(name: str, at: datetime, request: dict[str, Any], identity: dict[str, Any]) -> SsmEvent:
    raw = {
        "eventID": f"{name}-{at.timestamp():.0f}-{json.dumps(request, sort_keys=True)[:20]}"[:64],
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ssm.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-west-2",
        "recipientAccountId": "111122223333",
        "sourceIPAddress": "10.0.12.34",
        "userIdentity": identity,
        "requestParameters": request,
    }
    event = to_event(raw, Settings().principal_keying)
    if not isinstance(event, SsmEvent):
        raise TypeError(f"not an SSM event: {event}")
    return event


def _role(name: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::111122223333:assumed-role/{name}/i-0c1b2c3d4e5f60001",
        "accountId": "111122223333",
        "accessKeyId": "ASIA3P4NHRAZ3Q8ZZXYA",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::111122223333:role/{name}"}
        },
    }


def workload() -> list[SsmEvent]:
    names = [f"/orders/prod/{n}" for n in ("db", "stripe", "jwt", "redis", "smtp")]
    return [
        _record(
            "GetParameters",
            START + timedelta(minutes=m),
            {"names": names, "withDecryption": True},
            _role("orders-api"),
        )
        for m in range(HOURS * 60)
    ]


def stratus() -> list[SsmEvent]:
    identity = _role("compromised")
    events = []
    for hour in range(HOURS):
        at = START + timedelta(hours=hour)
        events.append(_record("DescribeParameters", at, {"maxResults": 50}, identity))
        for batch in range(3):
            names = [f"/credentials/c-{10 * batch + i}" for i in range(10)]
            request = {"names": names, "withDecryption": True}
            events.append(
                _record("GetParameters", at + timedelta(seconds=batch + 1), request, identity)
            )
    return events


def measure(events: list[SsmEvent], settings: Settings) -> dict[str, Any]:
    store = SizedStore()
    pipeline = Pipeline([SecureStringHarvestingDetection()], store, settings)
    findings = sum(len(pipeline.process(event).findings) for event in events)
    n = len(events)
    wru = store.write_units / n
    lambda_usd = PRICES["lambda_request"]["usd"] + (
        WARM_BILLED_MS / 1000 * MEMORY_GB * PRICES["lambda_arm64_gb_second"]["usd"]
    )
    dynamodb_usd = wru * PRICES["dynamodb_write_request_unit"]["usd"]
    return {
        "events": n,
        "findings": findings,
        "state_calls_per_event": round(store.calls / n, 3),
        "write_units_per_event": round(wru, 2),
        "largest_item_bytes": max(store._sizes.values(), default=0),
        "usd_per_million": {
            "lambda": round(lambda_usd * 1e6, 2),
            "dynamodb": round(dynamodb_usd * 1e6, 2),
            "total": round((lambda_usd + dynamodb_usd) * 1e6, 2),
        },
    }


def main() -> int:
    allow = Settings(
        allowlist=Allowlist(
            {METADATA.id: AllowRule(principals=("arn:aws:iam::*:role/orders-api",))}
        )
    )
    results = {
        "workload (5 names a minute, 48 h)": measure(workload(), Settings()),
        "workload, allowlisted": measure(workload(), allow),
        "stratus (describe + 3 x 10 names, hourly, 48 h)": measure(stratus(), Settings()),
    }
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
