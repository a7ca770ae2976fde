"""AWS.SSM.SessionTunnel: port-forwarding sessions, judged on where the tunnel leads and on
whether the principal is rare (no port-forwarding session within the history window)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detections.session_tunnel import SessionTunnelDetection, host_scope, tunnel_of
from ssm_detect.findings import Finding, Severity
from ssm_detect.settings import Allowlist, AllowRule, Settings
from ssm_detect.ssm_event import StartSessionCall
from ssm_detect.state.first_seen import FirstSeen
from tests.builders import Runner, iso, load_record, parse

DETECTION = "AWS.SSM.SessionTunnel"
REMOTE = "session_tunnel_remote_host_rds.json"
LOCAL = "session_tunnel_local_rdp.json"
RARE_REASON = "no port-forwarding session by this principal in the previous 10 days"


def fire(record: dict[str, Any], settings: Settings | None = None) -> list[Finding]:
    """The findings for a principal with no tunnel in the history window (a fresh store)."""
    return Runner(settings, [SessionTunnelDetection()]).process(record)


def moved(record: dict[str, Any], delta: timedelta, event_id: str) -> dict[str, Any]:
    """The same call, `delta` later (or earlier), as another CloudTrail event."""
    copy = json.loads(json.dumps(record))
    at = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")) + delta
    copy["eventTime"] = iso(at)
    copy["eventID"] = event_id
    return copy


def fire_known(record: dict[str, Any], settings: Settings | None = None) -> list[Finding]:
    """The findings for a principal that opened an unreported tunnel (to 8080 on a node) the
    day before: a known tunnel user."""
    runner = Runner(settings, [SessionTunnelDetection()])
    earlier = moved(record, timedelta(days=-1), "earlier-tunnel")
    earlier["requestParameters"]["documentName"] = "AWS-StartPortForwardingSession"
    earlier["requestParameters"]["parameters"] = {"portNumber": ["8080"]}
    assert runner.process(earlier) == []
    return runner.process(record)


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
    ("host", "scope", "known_severity", "rare_severity"),
    [
        ("10.20.3.4", "private", None, Severity.MEDIUM),
        ("172.31.0.9", "private", None, Severity.MEDIUM),
        ("192.168.1.1", "private", None, Severity.MEDIUM),
        ("100.64.12.1", "private", None, Severity.MEDIUM),
        ("db.prod.internal", "private", None, Severity.MEDIUM),
        ("ip-10-0-0-1.us-west-2.compute.internal", "private", None, Severity.MEDIUM),
        ("cache.abc.0001.usw2.cache.amazonaws.com", "private", None, Severity.MEDIUM),
        ("fd12:3456::1", "private", None, Severity.MEDIUM),
        ("127.0.0.1", "loopback", None, Severity.MEDIUM),
        ("db.example.com", "name (not resolved)", Severity.MEDIUM, Severity.MEDIUM),
        ("8.8.8.8", "public", Severity.HIGH, Severity.HIGH),
        ("203.0.113.50", "public", Severity.HIGH, Severity.HIGH),  # documentation range
        ("2600:1f14::1", "public", Severity.HIGH, Severity.HIGH),
        ("169.254.169.254", "instance-metadata", Severity.HIGH, Severity.HIGH),
        ("[fd00:ec2::254]", "instance-metadata", Severity.HIGH, Severity.HIGH),
        ("169.254.1.1", "link-local", Severity.HIGH, Severity.HIGH),
    ],
)
def test_tunnel_remote_host_is_reported_outside_the_vpc_or_for_a_rare_principal(
    host: str, scope: str, known_severity: Severity | None, rare_severity: Severity
) -> None:
    """Inside the VPC a tunnel is reported only the first time in the history window; outside
    it (or when the host cannot be placed) always, whoever opens it."""
    (rare,) = fire(remote([host]))
    assert rare.detection_id == DETECTION
    assert rare.context["remote_host"] == host
    assert rare.context["remote_host_scope"] == scope
    assert rare.context["first_tunnel_in_window"] is True
    assert rare.severity is rare_severity
    assert RARE_REASON in rare.severity_reasons

    known = fire_known(remote([host]))
    assert [f.severity for f in known] == ([known_severity] if known_severity else [])
    for finding in known:
        assert RARE_REASON not in finding.severity_reasons
        assert finding.context["first_tunnel_in_window"] is False
        assert finding.context["previous_tunnel_event_id"] == "earlier-tunnel"


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
    (finding,) = fire_known(local([port]))

    assert finding.severity is Severity.LOW
    assert finding.context["tunnel_kind"] == "local_port"
    assert finding.context["remote_port"] == port
    assert finding.context["port_service"] == service


def test_tunnel_local_sensitive_port_by_a_rare_principal_is_medium() -> None:
    (finding,) = fire(local(["5432"]))

    assert finding.severity is Severity.MEDIUM
    assert finding.severity_reasons == (f"raised to MEDIUM: {RARE_REASON}",)


@pytest.mark.parametrize("port", [["8080"], ["443"], ["not-a-port"], [], None])
def test_tunnel_local_other_ports_are_not_reported(port: object) -> None:
    """Not even for a rare principal: a developer looking at a web app on a node."""
    assert fire(local(port)) == []


def test_tunnel_operator_who_tunnels_every_day_is_reported_once_per_history_window() -> None:
    """The benign look-alike: the same role to the same private database every morning. The
    first session in 10 days is MEDIUM; the next days are not reported; after 11 quiet days
    the role is rare again."""
    runner = Runner(None, [SessionTunnelDetection()])
    first = load_record(REMOTE)
    days = [0, 1, 2, 3, 14]
    results = [
        runner.process(moved(first, timedelta(days=day), f"tunnel-day-{day}")) for day in days
    ]

    assert [[f.severity for f in r] for r in results] == [
        [Severity.MEDIUM],
        [],
        [],
        [],
        [Severity.MEDIUM],
    ]
    assert results[-1][0].context["previous_tunnel_event_id"] is None


def test_tunnel_rarity_is_per_account_and_principal_not_per_session() -> None:
    """One role's sessions are one principal (role keying); the same role name in another
    account is another principal."""
    runner = Runner(None, [SessionTunnelDetection()])
    record = load_record(REMOTE)
    assert len(runner.process(record)) == 1

    other_session = moved(record, timedelta(hours=2), "other-session")
    other_session["userIdentity"]["arn"] = other_session["userIdentity"]["arn"].replace(
        "dana.kim", "lee.park"
    )
    assert runner.process(other_session) == []

    other_account = moved(record, timedelta(hours=3), "other-account")
    text = json.dumps(other_account).replace("111122223333", "444455556666")
    assert len(runner.process(json.loads(text))) == 1


def test_tunnel_shell_session_neither_reads_nor_refreshes_the_history() -> None:
    """A shell is not a tunnel: no state call for it, and it does not make a principal known."""
    detection = SessionTunnelDetection()
    settings = Settings()
    shell = load_record("session_shell_operator.json")
    assert not detection.applies_to(parse(shell), settings)
    tunnel = parse(load_record(REMOTE))
    update = detection.state_update(tunnel, settings)
    assert update is not None
    assert update.key == "tunneller#111122223333#arn:aws:iam::111122223333:role/PlatformOps"
    assert isinstance(detection.block(settings), FirstSeen)


def test_tunnel_caller_that_cannot_be_read_is_judged_as_rare() -> None:
    """Fail toward detection: no key means no history; the tunnel is still judged, as a first
    one, and the finding says why."""
    record = remote(["10.0.0.9"])
    record["recipientAccountId"] = "not-an-account"
    record["userIdentity"]["accountId"] = "not-an-account"
    event = parse(record)
    assert event.unkeyed_reason == "no valid account id"

    (finding,) = fire(record)

    assert finding.severity is Severity.MEDIUM
    assert finding.severity_reasons == (
        "the caller could not be read (no valid account id): judged as a first tunnel",
    )


def test_tunnel_ssh_session_document_defaults_to_port_22() -> None:
    record = local(None, document="AWS-StartSSHSession")
    del record["requestParameters"]["parameters"]

    (finding,) = fire_known(record)

    assert finding.context["port_service"] == "SSH"
    assert finding.severity is Severity.LOW


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
