"""A broken setting means more noise and an alarm, never silence (issue 15, point 5).

Before: a typo in ALLOWLIST_JSON deployed cleanly, then every invocation raised, every event
went to the failure queue, and detection stopped until a redeploy. Now the variable falls back
to its safe default, the detector keeps detecting, and the problem is logged at ERROR naming
the variable and counted in BadSettings on every invocation (template alarm BadSettingsAlarm).
"""

from __future__ import annotations

import json

import pytest

from ssm_detect.settings import Settings
from tests.conftest import Invoke, load_event
from tests.test_handler import emitted_metrics

SEND = "send_command_success.json"
SEND_DOCUMENT = "AWS-RunShellScript"  # the document in events/send_command_success.json

BROKEN = {
    "ALLOWLIST_JSON": '{"*": {"documents": ["AWS-RunShellScript"]',  # a missing brace
    "SEVERITY_OVERRIDES_JSON": '{"AWS.SSM.SendCommand": "HIHG"}',
    "SUPPRESSION_OVERRIDES_JSON": '{"AWS.SSM.SendCommand": "ten"}',
    "AUTOMATION_PRINCIPALS_JSON": '"arn:aws:iam::*:role/Patch"',
    "FANOUT_THRESHOLD": "0",
    "HISTORY_WINDOW_DAYS": "ten",
    "PRINCIPAL_KEYING": "person",
    "INCLUDE_SERVICE_PRINCIPALS": "ture",
    "FANOUT_WINDOW_MINUTES": "1e20",  # OverflowError, not ValueError
    "CHAIN_WINDOW_HOURS": "inf",
}


def test_settings_document_in_the_event_file_is_the_one_the_allowlist_names() -> None:
    detail = load_event(SEND)["detail"]
    assert detail["requestParameters"]["documentName"] == SEND_DOCUMENT


@pytest.mark.parametrize("variable", sorted(BROKEN))
def test_settings_each_broken_variable_falls_back_to_its_default_and_is_named(
    variable: str,
) -> None:
    with pytest.raises((ValueError, OverflowError)):
        Settings.from_env({variable: BROKEN[variable]})  # strict, as the CLI uses it
    settings, problems = Settings.from_env_failsafe({variable: BROKEN[variable]})
    assert [p.variable for p in problems] == [variable]
    assert settings == Settings()


def test_settings_good_variables_survive_beside_a_broken_one() -> None:
    env = {"ALLOWLIST_JSON": BROKEN["ALLOWLIST_JSON"], "FANOUT_THRESHOLD": "5"}
    settings, problems = Settings.from_env_failsafe(env)
    assert settings.fanout_threshold == 5
    assert settings.allowlist == Settings().allowlist
    assert [p.variable for p in problems] == ["ALLOWLIST_JSON"]


def test_settings_valid_environment_reports_nothing() -> None:
    env = {
        "ALLOWLIST_JSON": '{"*": {"principals": ["arn:aws:iam::*:role/Patch"]}}',
        "SEVERITY_OVERRIDES_JSON": '{"AWS.SSM.SendCommand": "medium"}',
        "INCLUDE_SERVICE_PRINCIPALS": "true",
    }
    settings, problems = Settings.from_env_failsafe(env)
    assert problems == []
    assert settings == Settings.from_env(env)


@pytest.mark.parametrize(
    "allowlist",
    [
        '{"*": {"principals": "arn:aws:iam::*:role/Patch"}}',  # a string, not a list
        '{"*": {"documents": "*"}}',
        '{"*": {"principal": ["*"]}}',  # a misspelt key
        '{"*": {"documents": [1]}}',
    ],
)
def test_settings_a_malformed_allowlist_never_widens_into_allowing_everything(
    allowlist: str,
) -> None:
    """A bare string was read character by character: "*" among them allowed everything."""
    settings, problems = Settings.from_env_failsafe({"ALLOWLIST_JSON": allowlist})
    assert [p.variable for p in problems] == ["ALLOWLIST_JSON"]
    assert settings.allowlist.rules == {}


def test_settings_broken_allowlist_in_the_handler_alerts_and_alarms(
    invoke: Invoke,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ALLOWLIST_JSON", BROKEN["ALLOWLIST_JSON"])
    first = invoke(load_event(SEND))
    second = invoke(load_event("panther_send_command_three_instances.json"))
    output = capsys.readouterr().out

    # detection goes on: the event the allowlist meant to silence fires (noise, not silence)
    assert first["findings"] == {"AWS.SSM.SendCommand": 1}
    assert first["allowlisted"] == {}
    assert second["findings"]
    # loudly: an ERROR line naming the variable, and the metric on every invocation
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [getattr(r, "variable", None) for r in errors] == ["ALLOWLIST_JSON"]
    assert "ALLOWLIST_JSON" in errors[0].getMessage()
    assert emitted_metrics(output)["BadSettings"] == 2


def test_settings_valid_allowlist_in_the_handler_suppresses_and_raises_no_alarm(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALLOWLIST_JSON", json.dumps({"*": {"documents": [SEND_DOCUMENT]}}))
    result = invoke(load_event(SEND))
    assert result["findings"] == {}
    assert result["allowlisted"]["AWS.SSM.SendCommand"] == 1
    assert "BadSettings" not in emitted_metrics(capsys.readouterr().out)
