"""AWS calls per event, counted with botocore's event hooks, against moto (in this process).

The real handler (`handler.app.lambda_handler`) runs with its runtime built by
`ssm_detect.wiring.lambda_runtime` on clients we hand in, each carrying a `before-call` hook
(counts the call; DynamoDB calls are classed by the item key they write: `ledger#...` is the
suppression ledger, anything else detection state) and an `after-call` hook (counts failed
conditional writes, and the item size DynamoDB returns, for the write-unit estimate). The
detections that declare a state update for the event are recorded as the pipeline asks them
(`DeclaredUpdates`): the allowance of "one atomic state round trip per stateful detection".

Per event kind, the measured event runs after its setup events on a principal of its own.
Then the corpus's SendCommand / CreateDocument stream (what the EventBridge rule would deliver)
runs through the same handler, for the per-event averages the cost estimate uses.

    python -m bench.calls OUT.json [--stream FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.kinds import ACCOUNT, KINDS, REGION, TABLE, Context, lambda_environment, sequence


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size rule: attribute names plus values (numbers ~ digits / 2 + 1)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        for kind, held in value.items():
            if kind == "S":
                size += len(held.encode())
            elif kind == "N":
                size += len(held) // 2 + 1
            elif kind == "SS":
                size += sum(len(m.encode()) for m in held)
            elif kind == "NS":
                size += sum(len(m) // 2 + 1 for m in held)
            elif kind == "B":  # the ledger's compressed finding: its raw bytes
                size += len(held)
            elif kind == "BS":
                size += sum(len(m) for m in held)
            else:
                size += len(json.dumps(held, default=lambda raw: "x" * len(raw)))
    return size


def dynamodb_role(request: dict[str, Any]) -> str:
    """`ledger`, `state` or `state_prune`, from the keys a request writes. A transaction's keys
    are inside its items (the ledger records a notification's windows in one
    `TransactWriteItems`): it is the ledger's when every item is, detection state otherwise."""
    writes = [request] + [
        operation
        for item in request.get("TransactItems", [])
        for operation in item.values()
        if isinstance(operation, dict)
    ]
    keys = [w.get("Key", {}).get("pk", {}).get("S") for w in writes]
    keys = [key for key in keys if key is not None]
    if keys and all(key.startswith("ledger#") for key in keys):
        return "ledger"
    if str(request.get("UpdateExpression", "")).startswith("DELETE"):
        return "state_prune"
    return "state"


class CallCounter:
    """Counts AWS calls by category, from botocore's hooks on the injected clients."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.write_units = 0
        self.findings_imported = 0
        self._current = ""

    def attach(self, *clients: Any) -> None:
        for client in clients:
            client.meta.events.register("before-call.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)

    def reset(self) -> None:
        self.calls.clear()
        self.failed.clear()
        self.write_units = 0
        self.findings_imported = 0

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        category = f"{service}.{model.name}"
        body = params.get("body") or b"{}"
        if service == "dynamodb":
            category = f"{dynamodb_role(json.loads(body))}.{model.name}"
        elif service == "securityhub":
            self.findings_imported += len(json.loads(body).get("Findings", []))
        self._current = category
        self.calls[category] += 1

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.service_model.service_name != "dynamodb" or model.name == "CreateTable":
            return
        item = parsed.get("Attributes") or parsed.get("Item") or {}
        self.write_units += max(1, math.ceil(item_size(item) / 1024))
        if http_response.status_code >= 300:
            self.failed[self._current] += 1

    def snapshot(self) -> dict[str, Any]:
        by_role: Counter[str] = Counter()
        for category, count in self.calls.items():
            by_role[category.split(".", 1)[0]] += count
        return {
            "calls": dict(sorted(self.calls.items())),
            "failed_conditional": dict(self.failed),
            "total": sum(self.calls.values()),
            "state": by_role["state"] + by_role["state_prune"],
            "ledger": by_role["ledger"],
            "sns": by_role["sns"],
            "securityhub": by_role["securityhub"],
            "write_units": self.write_units,
            "findings_imported": self.findings_imported,
        }


class DeclaredUpdates:
    """Which detections declare a state update (`state_update` returns one), recorded from the
    real pipeline as it runs: the prior verdicts, allowlist and settings are the handler's own,
    so the count is what the event actually asks of the store, not a list kept by hand. Each
    declared update is one atomic round trip, the target's allowance."""

    def __init__(self, detections: Any) -> None:
        self.declared: list[str] = []
        for detection in detections:
            detection.state_update = self._recording(detection)

    def _recording(self, detection: Any) -> Any:
        declare = detection.state_update  # the bound method, before it is replaced

        def state_update(*args: Any, **kwargs: Any) -> Any:
            update = declare(*args, **kwargs)
            if update is not None:
                self.declared.append(detection.metadata.id)
            return update

        return state_update

    def reset(self) -> None:
        self.declared.clear()


@contextmanager
def moto_handler(env: dict[str, str]) -> Iterator[tuple[Any, Any, Mapping[str, Any]]]:
    """The real handler in moto, its runtime wired to three clients the caller can hook:
    yields (handler.app, its runtime, the clients by name). `env` is the function's
    environment; the topic's ARN is added to it."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    os.environ.update(env)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        hub = boto3.client("securityhub", region_name=REGION)
        from ssm_detect.state.tables import ensure_state_table  # noqa: PLC0415

        ensure_state_table(dynamodb, TABLE)
        env["FINDINGS_TOPIC_ARN"] = sns.create_topic(Name="ssm-detect-findings")["TopicArn"]

        from handler import app  # noqa: PLC0415
        from ssm_detect.wiring import AwsClients, lambda_runtime  # noqa: PLC0415

        wired = lambda_runtime(
            env,
            app.logger,
            ACCOUNT,
            AwsClients(dynamodb=dynamodb, sns=sns, securityhub=hub),
            on_unavailable=app.report_unavailable_sink,
            on_sink_failure=app.report_sink_failure,
        )
        # The handler builds its runtime lazily through `app.runtime`; hand it ours.
        app.runtime = lambda _account: wired
        yield app, wired, {"dynamodb": dynamodb, "sns": sns, "securityhub": hub}


def run(stream: Path | None) -> dict[str, Any]:
    with moto_handler(lambda_environment()) as (app, wired, clients):
        counter = CallCounter()
        counter.attach(*clients.values())
        declared = DeclaredUpdates(wired.pipeline.detections)
        context = Context()

        kinds = []
        for kind in KINDS:
            repeats = []
            for repeat in range(2):  # twice: the counts must not depend on the repetition
                setup, event = sequence(kind, f"{kind.name}-{repeat}")
                for earlier in setup:
                    app.lambda_handler(earlier, context)
                counter.reset()
                declared.reset()
                result = app.lambda_handler(event, context)
                repeats.append(
                    counter.snapshot()
                    | {
                        "stateful_detections": list(declared.declared),
                        "findings": sum(result["findings"].values()),
                        "by_detection": result["findings"],
                        "notified": result["notified"],
                        "suppressed": result["suppressed"],
                    }
                )
            first = repeats[0]
            kinds.append(
                {
                    "kind": kind.name,
                    "title": kind.title,
                    "event": kind.event,
                    "setup": list(kind.setup),
                    "stable": all(
                        r["calls"] == first["calls"]
                        and r["stateful_detections"] == first["stateful_detections"]
                        for r in repeats
                    ),
                    **first,
                }
            )
        out: dict[str, Any] = {"kinds": kinds}
        if stream is not None:
            out["stream"] = _stream(stream, app, counter, context)
    return out


def _stream(path: Path, app: Any, counter: CallCounter, context: Context) -> dict[str, Any]:
    from bench.kinds import lambda_stream  # noqa: PLC0415

    events = lambda_stream(path)
    counter.reset()
    totals: Counter[str] = Counter()
    started = time.perf_counter()
    for event in events:
        result = app.lambda_handler(event, context)
        totals["findings"] += sum(result["findings"].values())
        totals["notified"] += result["notified"]
        totals["suppressed"] += result["suppressed"]
        totals["bad_events"] += result["bad_events"]
    return {
        "events": len(events),
        "seconds_under_moto": round(time.perf_counter() - started, 2),
        **dict(totals),
        **counter.snapshot(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--stream", type=Path)
    args = parser.parse_args()
    args.out.write_text(json.dumps(run(args.stream), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
