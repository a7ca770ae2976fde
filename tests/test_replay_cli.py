"""`ssm-detect replay` and `ssm-detect invoke` from the command line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ssm_detect.cli import main
from tests.conftest import EVENTS, load_event


def run_jsonl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[dict[str, Any]], str]:
    assert main(["replay", "--output", "jsonl", *args]) == 0
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def record(name: str) -> dict[str, Any]:
    detail: dict[str, Any] = load_event(name)["detail"]
    return detail


def test_replay_reads_every_input_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three = record("panther_send_command_three_instances.json")
    creator = record("create_document_command_new_principal.json")
    iam_user = record("send_command_iam_user.json")
    (tmp_path / "s3.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [three]}).encode()))
    (tmp_path / "array.json").write_text(json.dumps([creator]))
    (tmp_path / "lines.jsonl").write_text(json.dumps(iam_user) + "\n")
    (tmp_path / "envelope.json").write_text(json.dumps({**load_event("send_command_root.json")}))
    findings, _ = run_jsonl(capsys, str(tmp_path))
    by_event = {(f["detection_id"], f["event_ids"][-1]) for f in findings}
    assert ("AWS.SSM.DistributedCommand", three["eventID"]) in by_event
    assert ("AWS.SSM.RareCommandDocumentCreator", creator["eventID"]) in by_event
    assert ("AWS.SSM.SendCommand", iam_user["eventID"]) in by_event
    assert ("AWS.SSM.SendCommand", record("send_command_root.json")["eventID"]) in by_event


def test_replay_processes_a_duplicated_event_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = record("panther_single_instance_no_cache.json")
    (tmp_path / "a.json").write_text(json.dumps({"Records": [event]}))
    (tmp_path / "b.json").write_text(json.dumps({"Records": [event]}))
    findings, err = run_jsonl(capsys, str(tmp_path))
    assert [f["detection_id"] for f in findings] == ["AWS.SSM.SendCommand"]
    assert json.loads(err.splitlines()[0])["duplicates"] == 1


def test_replay_orders_events_by_event_time_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Newest-first input: the fan-out is still found at the later call."""
    first = record("fanout_hour_straddle_first_1059.json")
    second = record("fanout_hour_straddle_second_1101.json")
    (tmp_path / "newest-first.json").write_text(json.dumps({"Records": [second, first]}))
    findings, _ = run_jsonl(capsys, str(tmp_path))
    fanouts = [f for f in findings if f["detection_id"] == "AWS.SSM.DistributedCommand"]
    assert len(fanouts) == 1
    assert fanouts[0]["event_ids"] == [first["eventID"], second["eventID"]]


def test_replay_reports_bad_input_with_position_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = record("panther_single_instance_no_cache.json")
    lines = [json.dumps(good), "{not json", json.dumps({"eventSource": "ssm.amazonaws.com"})]
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "truncated.json.gz").write_bytes(gzip.compress(b'{"Records": []}')[:-8])
    findings, err = run_jsonl(capsys, str(tmp_path))
    assert [f["detection_id"] for f in findings] == ["AWS.SSM.SendCommand"]
    assert "mixed.jsonl:2" in err
    assert "mixed.jsonl:3" in err
    assert "truncated.json.gz" in err
    assert json.loads(err.splitlines()[0])["bad_events"] == 3


def test_replay_exits_2_for_a_missing_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "/no/such/place"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_replay_exits_2_for_a_state_file_that_cannot_be_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "no" / "such" / "folder" / "state.sqlite"
    assert main(["replay", "--state", str(state), str(EVENTS / "send_command_root.json")]) == 2
    assert capsys.readouterr().err == (
        f"ssm-detect: cannot open state file {state}: unable to open database file\n"
    )


def test_replay_rejects_invalid_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--fanout-threshold", "0", str(EVENTS)]) == 2
    assert "FANOUT_THRESHOLD" in capsys.readouterr().err


def test_replay_state_file_persists_between_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A creator seen in the first run is not rare in the second."""
    state = str(tmp_path / "state.sqlite")
    first = record("create_document_sso_first_user.json")
    again = record("create_document_sso_same_user_again.json")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "a.json").write_text(json.dumps([first]))
    (tmp_path / "two" / "b.json").write_text(json.dumps([again]))
    findings_one, _ = run_jsonl(capsys, "--state", state, str(tmp_path / "one"))
    findings_two, _ = run_jsonl(capsys, "--state", state, str(tmp_path / "two"))
    assert [f["detection_id"] for f in findings_one] == ["AWS.SSM.RareCommandDocumentCreator"]
    assert findings_two == []


def test_replay_table_output_lists_findings_then_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", "--output", "table", str(EVENTS / "send_command_iam_user.json")]) == 0
    out = capsys.readouterr().out
    table, summary = out.split("summary", 1)
    row = next(line for line in table.splitlines() if "SendCommand" in line)
    assert row.split() == [
        "HIGH",
        "SendCommand",
        "user/ci-runner",
        "111122223333",
        "2025-03-12",
        "10:00",
        "1",
        "i-0ba7a1a02ce948965",
        "+2",
    ]
    assert "SSM events processed" in summary
    assert "firings: SendCommand" in summary


def test_replay_output_defaults_to_json_lines_when_stdout_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", str(EVENTS / "send_command_iam_user.json")]) == 0
    out = capsys.readouterr().out
    assert {json.loads(line)["detection_id"] for line in out.splitlines()} == {
        "AWS.SSM.SendCommand",
        "AWS.SSM.DistributedCommand",
    }


def test_replay_shows_no_progress_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", "--output", "jsonl", str(EVENTS / "send_command_iam_user.json")]) == 0
    [summary] = capsys.readouterr().err.splitlines()
    assert json.loads(summary)["ssm_events"] == 1


def test_replay_shows_a_progress_bar_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert main(["replay", "--output", "jsonl", str(EVENTS)]) == 0
    err = capsys.readouterr().err
    assert "reading" in err
    assert "detecting" in err
    assert "100%" in err


def test_replay_rejects_a_sort_buffer_below_one_megabyte(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", "--sort-buffer-mb", "0", str(EVENTS)]) == 2
    assert capsys.readouterr().err == "ssm-detect: --sort-buffer-mb must be at least 1\n"


def test_replay_lists_a_bounded_number_of_problems_and_counts_them_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "noise.jsonl").write_text("not json\n" * 1005)
    _, err = run_jsonl(capsys, str(tmp_path))
    summary, *problems = err.splitlines()
    assert json.loads(summary)["bad_events"] == 1005
    assert len(problems) == 1001
    assert problems[-1] == "skipped: ... and 5 more (counted in the summary)"


def test_invoke_runs_the_real_handler_on_an_event_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handler import app  # noqa: PLC0415

    app.runtime.cache_clear()
    monkeypatch.setenv("STATE_TABLE_NAME", "unused")
    assert main(["invoke", str(EVENTS / "panther_send_command_three_instances.json")]) == 0
    app.runtime.cache_clear()
    out = capsys.readouterr().out
    summary = json.loads(out[out.rindex("\n{") :])
    assert summary["findings"] == {"AWS.SSM.SendCommand": 1, "AWS.SSM.DistributedCommand": 1}


def test_invoke_works_from_a_plain_shell_without_powertools_variables() -> None:
    """`make invoke` in a fresh shell: nothing but the command; the handler still flushes its
    metrics (Powertools needs a namespace, which template.yaml sets in Lambda)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "ssm_detect.cli", "invoke", str(EVENTS / "send_command_root.json")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout[done.stdout.rindex("\n{") :])
    assert summary["findings"]["AWS.SSM.SendCommand"] == 1


def test_replay_problem_lines_cannot_be_forged_by_event_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = {"eventSource": "ssm.amazonaws.com", "eventID": "x\nskipped: fake line\r"}
    (tmp_path / "forged.json").write_text(json.dumps([forged]))
    _, err = run_jsonl(capsys, str(tmp_path))
    problem_lines = [line for line in err.splitlines() if line.startswith("skipped:")]
    assert len(problem_lines) == 1
    assert "x?skipped: fake line?" in problem_lines[0]
