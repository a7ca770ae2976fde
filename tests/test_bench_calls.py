"""The AWS-call guarantees `make bench` reports, checked on the real handler (bench/calls.py).

bench/calls.py runs every event kind through `handler.app.lambda_handler` against moto and
counts the calls with botocore's hooks; here the targets are asserted, so a detection that adds
a second round trip, or a call for an event nothing needs, fails the suite and not only the
benchmark. It runs in a process of its own: it sets the function's environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.calls import dynamodb_role
from bench.run import _call_targets

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("calls") / "calls.json"
    subprocess.run(  # noqa: S603 - fixed argv, our own module
        [sys.executable, "-m", "bench.calls", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    loaded: list[dict[str, Any]] = json.loads(out.read_text())["kinds"]
    return loaded


def test_every_kind_holds_the_call_targets(kinds: list[dict[str, Any]]) -> None:
    failing = {
        kind["kind"]: [name for name, holds in _call_targets(kind).items() if not holds]
        for kind in kinds
    }
    assert {name: checks for name, checks in failing.items() if checks} == {}
    assert all(kind["stable"] for kind in kinds)


def test_a_non_ssm_record_costs_no_call(kinds: list[dict[str, Any]]) -> None:
    (non_ssm,) = [kind for kind in kinds if kind["kind"] == "non_ssm"]
    assert non_ssm["total"] == 0
    assert non_ssm["stateful_detections"] == []


def test_a_successful_send_command_declares_the_fan_out_and_the_probing_updates(
    kinds: list[dict[str, Any]],
) -> None:
    (three,) = [kind for kind in kinds if kind["kind"] == "send_command_three_at_once"]
    assert sorted(three["stateful_detections"]) == [
        "AWS.SSM.DistributedCommand",
        "AWS.SSM.SendCommandProbing",
    ]
    assert three["state"] == 2
    # The notification's windows are recorded in one ledger transaction, not a state call.
    assert three["calls"].get("ledger.TransactWriteItems") == 1


def test_a_transaction_is_classed_by_the_keys_it_writes() -> None:
    def update(pk: str) -> dict[str, Any]:
        return {"Update": {"Key": {"pk": {"S": pk}}, "UpdateExpression": "SET a = :a"}}

    ledger = {"TransactItems": [update("ledger#a"), update("ledger#b")]}
    mixed = {"TransactItems": [update("ledger#a"), update("fanout#acct#p")]}
    assert dynamodb_role(ledger) == "ledger"
    assert dynamodb_role(mixed) == "state"
    assert dynamodb_role({"Key": {"pk": {"S": "ledger#x"}}}) == "ledger"
    assert dynamodb_role({"Key": {"pk": {"S": "probing#x"}}, "UpdateExpression": "DELETE s"}) == (
        "state_prune"
    )
