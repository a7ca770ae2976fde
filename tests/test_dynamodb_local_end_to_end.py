"""The end-to-end handler tests with state and ledger in DynamoDB Local instead of moto.

Two suites are imported unchanged and re-run here:
- tests/test_end_to_end.py (the real handler; SNS, SQS and Security Hub in moto; faults at
  every AWS call): its `stack` fixture is replaced by one whose DynamoDB client talks to
  DynamoDB Local (moto lets requests to other endpoints through);
- tests/test_manifest.py's `test_event_file_fires_exactly_its_manifest_entry` (every event
  file through the real handler, checked against events/manifest.toml): `invoke` is replaced
  by one that wires the handler from the environment exactly as in Lambda, with
  AWS_ENDPOINT_URL_DYNAMODB pointing at DynamoDB Local, and no moto at all.
Each test gets a new table; the suites' module-level `TABLE` is pointed at it for the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ssm_detect.local_context import LocalLambdaContext
from tests import test_end_to_end as end_to_end
from tests import test_manifest as manifest
from tests.conftest import Invoke
from tests.test_end_to_end import Stack

if TYPE_CHECKING:
    from tests.dynamodb_local import DynamoDbLocal

pytest_plugins = ["tests.dynamodb_local"]

# The per-file sink test runs on a covering subset (one file per detection, below): the sinks are
# moto either way, and every file's detections run on DynamoDB Local in the manifest test.
_PER_FILE = "test_each_seed_positive_gives_one_message_and_one_hub_finding_per_detection"
END_TO_END: dict[str, Callable[..., None]] = {
    name: getattr(end_to_end, name)
    for name in dir(end_to_end)
    if name.startswith("test_") and name != _PER_FILE
}
globals().update(END_TO_END)
test_event_file_fires_exactly_its_manifest_entry = (
    manifest.test_event_file_fires_exactly_its_manifest_entry
)


def _covering(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first positive file for each detection (so every detection's sinks are exercised)."""
    chosen: dict[str, dict[str, Any]] = {}
    for case in cases:
        for detection in case["fires"]:
            chosen.setdefault(detection, case)
    return list({c["file"]: c for c in chosen.values()}.values())


COVERING = _covering(end_to_end.POSITIVE)


@pytest.mark.parametrize("case", COVERING, ids=[c["file"] for c in COVERING])
def test_dynamodb_local_seed_positive_gives_one_message_and_one_hub_finding(
    case: dict[str, Any], stack: Stack
) -> None:
    getattr(end_to_end, _PER_FILE)(case, stack)


def test_dynamodb_local_runs_the_whole_end_to_end_suite() -> None:
    assert len(END_TO_END) >= 6
    assert {d for c in COVERING for d in c["fires"]} == {
        d for c in end_to_end.POSITIVE for d in c["fires"]
    }


@pytest.fixture
def stack(local_stack: Stack, local_table: str, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """tests/test_end_to_end.py's stack, with DynamoDB Local for state and ledger."""
    monkeypatch.setattr(end_to_end, "TABLE", local_table)  # the suite scans its table
    return local_stack


@pytest.fixture
def invoke(
    dynamodb_local: DynamoDbLocal,
    local_table: str,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: LocalLambdaContext,
) -> Iterator[Invoke]:
    """The real handler wired from the environment, as in Lambda, against DynamoDB Local."""
    from handler import app  # noqa: PLC0415

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    monkeypatch.setenv("STATE_TABLE_NAME", local_table)
    monkeypatch.setattr(manifest, "TABLE", local_table)  # seed_given_state writes there
    app.runtime.cache_clear()

    def call(event: object) -> dict[str, Any]:
        return app.lambda_handler(event, lambda_context)  # type: ignore[arg-type]

    yield call
    app.runtime.cache_clear()


def test_dynamodb_local_invoke_really_reaches_dynamodb_local(
    invoke: Invoke, dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """The wiring honours AWS_ENDPOINT_URL_DYNAMODB: the state lands in DynamoDB Local."""
    invoke(manifest.load_event("panther_send_command_three_instances.json"))
    items = dynamodb_local.client().scan(TableName=local_table)["Items"]
    kinds = sorted(item["pk"]["S"].split("#")[0] for item in items)
    # A person's SendCommand: its fan-out and probing windows (issue 12 point 7), and the
    # ledger windows of its two findings.
    assert kinds == ["fanout", "ledger", "ledger", "probing"]
