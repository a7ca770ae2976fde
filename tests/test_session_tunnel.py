"""AWS.SSM.SessionTunnel: port-forwarding sessions, judged on where the tunnel leads."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detections.session_tunnel import SessionTunnelDetection, host_scope, tunnel_of
from ssm_detect.findings import Finding, Severity
from ssm_detect.settings import Allowlist, AllowRule, Settings
from ssm_detect.ssm_event import StartSessionCall
from tests.builders import Runner, load_record, parse

DETECTION = "AWS.SSM.SessionTunnel"
REMOTE = "session_tunnel_remote_host_rds.json"
LOCAL = "session_tunnel_local_rdp.json"


def fire(record: dict[str, Any], settings: Settings | None = None) -> list[Finding]:
    return Runner(settings, [SessionTunnelDetection()]).process(record)


def remote(host: object, port: object = "5432") -> dict[str, Any]:
    record = load_record(REMOTE)
    record["requestParameters"]["parameters"] = {"host": host, "portNumber": port}
    return record


def local(port: object, document: str = "AWS-StartPortForwardingSession") -> dict[str, Any]:
    record = load_record(LOCAL)
    record["requestParameters"]["documentName"] = document
    record["requestParameters"]["parameters"] = {"portNumber": port, "localPortNumber": ["1"]}
    return record


@pytest.mark.parametrize(
    ("host", "scope", "severity"),
    [
        ("10.20.3.4", "private", Severity.MEDIUM),
        ("172.31.0.9", "private", Severity.MEDIUM),
        ("192.168.1.1", "private", Severity.MEDIUM),
        ("100.64.12.1", "private", Severity.MEDIUM),
        ("db.prod.internal", "private", Severity.MEDIUM),
        ("ip-10-0-0-1.us-west-2.compute.internal", "private", Severity.MEDIUM),
        ("cache.abc.0001.usw2.cache.amazonaws.com", "private", Severity.MEDIUM),
        ("db.example.com", "name (not resolved)", Severity.MEDIUM),
        ("8.8.8.8", "public", Severity.HIGH),
        ("203.0.113.50", "public", Severity.HIGH),  # documentation range: not a VPC address
        ("2600:1f14::1", "public", Severity.HIGH),
        ("169.254.169.254", "instance-metadata", Severity.HIGH),
        ("[fd00:ec2::254]", "instance-metadata", Severity.HIGH),
        ("169.254.1.1", "link-local", Severity.HIGH),
        ("fd12:3456::1", "private", Severity.MEDIUM),
        ("127.0.0.1", "loopback", Severity.MEDIUM),
    ],
)
def test_tunnel_remote_host_severity_follows_where_the_host_is(
    host: str, scope: str, severity: Severity
) -> None:
    (finding,) = fire(remote([host]))

    assert finding.detection_id == DETECTION
    assert finding.context["remote_host"] == host
    assert finding.context["remote_host_scope"] == scope
    assert finding.severity is severity
    assert (finding.severity_reasons != ()) is (severity is Severity.HIGH)


def test_tunnel_remote_host_names_port_and_service() -> None:
    (finding,) = fire(load_record(REMOTE))

    assert finding.context["remote_port"] == "5432"
    assert finding.context["local_port"] == "15432"
    assert finding.context["port_service"] == "PostgreSQL"
    assert "5432 (PostgreSQL)" in finding.description
    assert {r.label for r in finding.resources} >= {
        "i-0887569e2156800ad",
        "AWS-StartPortForwardingSessionToRemoteHost",
    }


@pytest.mark.parametrize(("port", "service"), [("22", "SSH"), ("3389", "RDP"), ("6379", "Redis")])
def test_tunnel_local_sensitive_port_is_low_with_the_port(port: str, service: str) -> None:
    (finding,) = fire(local([port]))

    assert finding.severity is Severity.LOW
    assert finding.context["tunnel_kind"] == "local_port"
    assert finding.context["remote_port"] == port
    assert finding.context["port_service"] == service


@pytest.mark.parametrize("port", [["8080"], ["443"], ["not-a-port"], [], None])
def test_tunnel_local_other_ports_are_not_reported(port: object) -> None:
    assert fire(local(port)) == []


def test_tunnel_ssh_session_document_defaults_to_port_22() -> None:
    record = local(None, document="AWS-StartSSHSession")
    del record["requestParameters"]["parameters"]

    (finding,) = fire(record)

    assert finding.context["port_service"] == "SSH"


def test_tunnel_custom_document_with_host_is_a_remote_tunnel() -> None:
    record = remote(["8.8.4.4"], ["53"])
    record["requestParameters"]["documentName"] = "Team-Tunnel"

    (finding,) = fire(record)

    assert finding.severity is Severity.HIGH
    assert finding.context["document_name"] == "Team-Tunnel"


@pytest.mark.parametrize("error_code", ["AccessDenied", "TargetNotConnected"])
def test_tunnel_failed_session_fires_nothing(error_code: str) -> None:
    record = load_record(REMOTE)
    record["errorCode"] = error_code
    record["responseElements"] = None

    assert fire(record) == []


def test_tunnel_shell_session_fires_nothing() -> None:
    assert fire(load_record("session_shell_operator.json")) == []


def test_tunnel_odd_shapes_are_read_for_their_meaning() -> None:
    (finding,) = fire(remote("8.8.8.8", 5432))

    assert finding.context["remote_host"] == "8.8.8.8"
    assert finding.context["remote_port"] == "5432"
    assert finding.severity is Severity.HIGH


def test_tunnel_allowlisted_document_is_counted_not_reported() -> None:
    settings = Settings(
        allowlist=Allowlist(
            {DETECTION: AllowRule(documents=("AWS-StartPortForwardingSessionToRemoteHost",))}
        )
    )
    assert fire(load_record(REMOTE), settings) == []


@given(st.text(max_size=300))
def test_properties_host_scope_never_raises(text: str) -> None:
    assert host_scope(text) in {
        "private",
        "public",
        "instance-metadata",
        "link-local",
        "loopback",
        "unspecified",
        "name (not resolved)",
    }


@given(
    st.dictionaries(
        st.sampled_from(["host", "portNumber", "localPortNumber", "x"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=20),
            st.lists(st.one_of(st.text(max_size=20), st.integers(), st.none()), max_size=3),
            st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
        ),
        max_size=4,
    )
)
def test_properties_any_parameter_shape_parses_and_judges(parameters: dict[str, Any]) -> None:
    record = load_record(REMOTE)
    record["requestParameters"]["parameters"] = parameters
    call = parse(record).call
    assert isinstance(call, StartSessionCall)

    tunnel = tunnel_of(call)

    has_host = any(
        isinstance(v, str | int) or (isinstance(v, list) and any(i is not None for i in v))
        for k, v in parameters.items()
        if k == "host"
    )
    assert (tunnel is not None and tunnel.kind == "remote_host") is has_host
