"""AWS.SSM.HybridActivation: CreateActivation by a rare principal or for an unexpected role."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from detections.hybrid_activation import HybridActivationDetection, role_allowed
from ssm_detect.findings import Finding, Severity
from ssm_detect.settings import Settings
from tests.builders import T0, Runner, iso, load_record

TEMPLATE = "activation_known_principal_1_first.json"
ALLOWED = Settings(activation_roles=("SSMServiceRole",))


def activation(at: datetime, event_id: str, role: str = "SSMServiceRole") -> dict[str, Any]:
    record = load_record(TEMPLATE)
    record["eventID"] = event_id
    record["eventTime"] = iso(at)
    record["requestParameters"]["iamRole"] = role
    return record


def run(records: list[dict[str, Any]], settings: Settings = ALLOWED) -> list[list[Finding]]:
    runner = Runner(settings, [HybridActivationDetection()])
    return [runner.process(r) for r in records]


def test_activation_first_by_a_principal_is_high_with_the_reason() -> None:
    (finding,) = run([activation(T0, "a1")])[0]

    assert finding.severity is Severity.HIGH
    assert finding.severity_reasons == ("no activation by this principal in the previous 10 days",)
    assert finding.context["iam_role"] == "SSMServiceRole"
    assert finding.context["activation_id"]
    assert finding.context["first_activation_in_window"] is True


def test_activation_known_principal_allowed_role_is_quiet() -> None:
    results = run([activation(T0, "a1"), activation(T0.replace(day=T0.day + 3), "a2")])

    assert results[1] == []


def test_activation_known_principal_unexpected_role_is_high() -> None:
    results = run([activation(T0, "a1"), activation(T0.replace(day=T0.day + 1), "a2", "Admin")])

    (finding,) = results[1]
    assert finding.severity_reasons == ("role Admin is not in ACTIVATION_ROLES_JSON",)
    assert finding.context["previous_activation_event_id"] == "a1"


def test_activation_after_the_history_window_is_first_again() -> None:
    later = datetime.fromtimestamp(T0.timestamp() + 11 * 86400, tz=T0.tzinfo)

    results = run([activation(T0, "a1"), activation(later, "a2")])

    assert len(results[1]) == 1


def test_activation_no_allowlist_means_every_role_is_unexpected() -> None:
    results = run([activation(T0, "a1"), activation(T0.replace(day=T0.day + 1), "a2")], Settings())

    assert [len(r) for r in results] == [1, 1]


def test_activation_failed_call_fires_nothing() -> None:
    record = activation(T0, "a1")
    record["errorCode"] = "AccessDenied"

    assert run([record]) == [[]]


@pytest.mark.parametrize(
    ("role", "patterns", "allowed"),
    [
        ("SSMServiceRole", ("SSMServiceRole",), True),
        ("service-role/SSMServiceRole", ("SSMServiceRole",), True),
        ("HybridNodes-eu", ("HybridNodes*",), True),
        (
            "arn:aws:iam::111122223333:role/HybridNodes-eu",
            ("arn:aws:iam::*:role/HybridNodes*",),
            True,
        ),
        ("AdminRole", ("SSMServiceRole",), False),
        (None, ("*",), False),
        ("AdminRole", (), False),
    ],
)
def test_activation_role_patterns(
    role: str | None, patterns: tuple[str, ...], allowed: bool
) -> None:
    assert role_allowed(role, patterns) is allowed
