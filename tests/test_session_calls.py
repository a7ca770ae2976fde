"""Models of issue 13's calls: StartSession, parameter reads, DescribeParameters, CreateActivation.

Tolerant as the other call models: odd shapes with one meaning are read for it, nothing valid is
dropped, and an unreadable `withDecryption` counts as a decrypting read (fail toward detection).
"""

from __future__ import annotations

from typing import Any

import pytest

from ssm_detect.models.session_calls import MAX_PARAMETER_NAMES
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import (
    DEFAULT_SESSION_DOCUMENT,
    CreateActivationCall,
    DescribeParametersCall,
    ParameterReadCall,
    StartSessionCall,
)
from tests.builders import load_record, parse


def read(name: str, request: dict[str, Any]) -> ParameterReadCall:
    record = load_record("session_shell_operator.json")
    record["eventName"] = name
    record["requestParameters"] = request
    record["responseElements"] = None
    call = parse(record).call
    assert isinstance(call, ParameterReadCall)
    return call


def test_start_session_without_document_is_a_shell() -> None:
    call = parse(load_record("session_shell_operator.json")).call

    assert isinstance(call, StartSessionCall)
    assert call.document_name == DEFAULT_SESSION_DOCUMENT
    assert call.target == "i-0887569e2156800ad"
    assert call.session_id is not None


def test_start_session_parameters_of_any_shape_keep_their_meaning() -> None:
    record = load_record("session_tunnel_remote_host_rds.json")
    record["requestParameters"]["parameters"] = {
        "host": "db",
        "portNumber": 5432,
        "flags": [True, None, {"x": 1}, "y"],
    }
    call = parse(record).call
    assert isinstance(call, StartSessionCall)

    assert call.parameter("host") == ("db",)
    assert call.parameter("portNumber") == ("5432",)
    assert call.parameter("flags") == ("true", "y")
    assert call.parameter("absent") == ()


def test_parameter_reads_name_names_and_path() -> None:
    single = read("GetParameter", {"name": "/app/db", "withDecryption": True})
    batch = read("GetParameters", {"names": ["/a", "/b", "/a"], "withDecryption": True})
    by_path = read(
        "GetParametersByPath", {"path": "/app/", "recursive": True, "withDecryption": True}
    )

    assert (single.names, single.decrypts, single.path) == (("/app/db",), True, None)
    assert batch.names == ("/a", "/b")
    assert (by_path.names, by_path.path, by_path.request.recursive) == ((), "/app/", True)


@pytest.mark.parametrize(
    ("flag", "decrypts", "odd"),
    [
        (True, True, False),
        ("true", True, False),
        (False, False, False),
        (None, False, False),
        ("yes please", True, True),
        ([1], True, True),
    ],
)
def test_parameter_reads_with_decryption_fails_toward_detection(
    flag: object, decrypts: bool, odd: bool
) -> None:
    call = read("GetParameters", {"names": ["/a"], "withDecryption": flag})

    assert call.decrypts is decrypts
    assert bool(call.request.oddities) is odd


def test_parameter_reads_names_are_cut_not_rejected() -> None:
    names: list[object] = [f"/p/{i}" for i in range(MAX_PARAMETER_NAMES + 50)]
    call = read("GetParameters", {"names": [None, 7, *names], "withDecryption": True})

    assert len(call.names) == MAX_PARAMETER_NAMES - 1  # None is dropped, 7 is the name "7"
    assert call.names[0] == "7"


def test_describe_parameters_and_create_activation_parse() -> None:
    record = load_record("session_shell_operator.json")
    record["eventName"] = "DescribeParameters"
    record["requestParameters"] = {
        "parameterFilters": [{"key": "Type", "values": ["SecureString"]}]
    }
    assert isinstance(parse(record).call, DescribeParametersCall)

    record["eventName"] = "CreateActivation"
    record["requestParameters"] = {"iamRole": "SSMServiceRole", "registrationLimit": "1000"}
    record["responseElements"] = {"activationId": "a1b2c3"}
    call = parse(record).call
    assert isinstance(call, CreateActivationCall)
    assert (call.iam_role, call.request.registration_limit, call.activation_id) == (
        "SSMServiceRole",
        1000,
        "a1b2c3",
    )


def test_settings_issue_13_values_from_environment() -> None:
    settings = Settings.from_env(
        {
            "SESSION_FANOUT_THRESHOLD": "3",
            "SESSION_FANOUT_WINDOW_MINUTES": "30",
            "SECRET_READ_THRESHOLD": "20",
            "SECRET_READ_WINDOW_MINUTES": "15",
            "ACTIVATION_ROLES_JSON": '["SSMServiceRole"]',
        }
    )

    assert settings.session_fanout_threshold == 3
    assert settings.session_fanout_window.total_seconds() == 1800
    assert settings.secret_read_threshold == 20
    assert settings.secret_read_window.total_seconds() == 900
    assert settings.activation_roles == ("SSMServiceRole",)
    with pytest.raises(ValueError, match="SECRET_READ_THRESHOLD"):
        Settings.from_env({"SECRET_READ_THRESHOLD": "0.5"})
