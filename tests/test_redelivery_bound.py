"""How long a notified firing is recognised, and the replay tool's note past that bound."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ssm_detect.cli import main
from ssm_detect.ledger.base import REDELIVERY_BOUND, RETENTION
from tests.builders import envelope, iso, send_command
from tests.conftest import ROOT


def test_ledger_outlives_every_redelivery_path_of_the_template() -> None:
    """The failure queues keep 14 days; EventBridge and Lambda add their own retry ages (the
    template's, bounded by the services' maxima: 24 h and 6 h). The ledger must outlive them."""
    template = (ROOT / "template.yaml").read_text()
    retention = {int(n) for n in re.findall(r"MessageRetentionPeriod: (\d+)", template)}
    ages = [int(n) for n in re.findall(r"MaximumEventAgeInSeconds: (\d+)", template)]
    assert retention
    assert ages
    assert max(retention) <= 14 * 86_400  # SQS's maximum retention, as configured
    assert all(age <= 6 * 3600 for age in ages)
    assert timedelta(seconds=max(retention) + 86_400 + 6 * 3600) <= REDELIVERY_BOUND
    assert RETENTION > REDELIVERY_BOUND


def _write(tmp_path: Path, at: datetime) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(envelope(send_command(event_id="old-1", at=at))))
    assert iso(at) in path.read_text()
    return path


def test_replay_says_when_its_input_is_older_than_the_redelivery_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = datetime.now(UTC) - RETENTION - timedelta(days=1)
    assert main(["replay", "--output", "jsonl", str(_write(tmp_path, old))]) == 0
    (summary,) = capsys.readouterr().err.splitlines()  # JSON lines: the note is in the summary
    assert (
        "older than the deployed detector's redelivery bound (16 days)"
        in (json.loads(summary)["note"])
    )
    assert main(["replay", "--output", "table", str(_write(tmp_path, old))]) == 0
    assert "note: events from" in capsys.readouterr().err


def test_replay_of_recent_input_has_no_such_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recent = datetime.now(UTC) - timedelta(days=2)
    assert main(["replay", "--output", "jsonl", str(_write(tmp_path, recent))]) == 0
    assert "redelivery bound" not in capsys.readouterr().err
