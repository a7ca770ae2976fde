"""AWS.SSM.SessionTunnel: a Session Manager port-forwarding tunnel (issue 13, point 2).

`StartSession` with a port-forwarding document makes a managed node a relay: no inbound rule,
no bastion, no SSH key, and CloudTrail shows where the tunnel leads (`host`, `portNumber`).
- **Through the node to another host** (`AWS-StartPortForwardingSessionToRemoteHost`, or any
  session document given a `host`): HIGH when the host is outside private address space (a
  public IP: the node becomes an egress proxy) or link-local (169.254.169.254, fd00:ec2::254:
  the node's instance credentials through the tunnel); MEDIUM for a host name we cannot place
  (it may lead outside the VPC); MEDIUM for a host inside the VPC **only when the principal is
  rare**. An operator who tunnels to the same private database every day is not reported.
- **To a port on the node itself** (`AWS-StartPortForwardingSession`, `AWS-StartSSHSession`, or
  a custom document with `portNumber`): LOW, raised to MEDIUM for a rare principal, and only for
  ports that are a remote-access or data service (SSH, RDP, WinRM, databases, caches, Docker,
  Kubernetes): a tunnel to 8080 is how developers look at a web app and is not reported.

Rare: the principal opened no port-forwarding session (any of the above, reported or not)
within the history window before this one. The shared first-seen block
(`ssm_detect.state.first_seen`), keyed by account + principal, as the rare document creator and
the activator; every port-forwarding session refreshes it, a shell session neither reads nor
writes it (no state call). A session whose caller could not be read is judged as rare, and the
finding says why (fail toward detection).

Host names are not resolved (detections do no I/O): a name is "private" when it ends in a suffix
that only resolves inside a VPC (`.internal`, RDS/ElastiCache/Redshift/DocumentDB endpoints, ...)
and "not resolved" otherwise; the finding names the host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    NO_PRIOR,
    AttackRef,
    DetectionMetadata,
    OfCall,
    Prior,
    Verdict,
)
from detections.session_context import session_context, session_resources
from detections.session_fanout import REMOTE_SERVICES
from detections.stateful import Observed, StatefulDetection, caller_key, sighting
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent, StartSessionCall
from ssm_detect.state import StateSnapshot
from ssm_detect.state.first_seen import FirstSeen, FirstSeenReading, Sighting

SSH_SESSION_DOCUMENT = "AWS-StartSSHSession"
# AWS's port-forwarding documents: a session with one of them is a tunnel even when it names
# no port (the documents' defaults apply).
PORT_FORWARDING_DOCUMENTS = frozenset(
    {
        SSH_SESSION_DOCUMENT,
        "AWS-StartPortForwardingSession",
        "AWS-StartPortForwardingSessionToRemoteHost",
        "AWS-StartPortForwardingSessionToSocket",
    }
)
# Where a remote host is inside the VPC (or is the node itself): reported only for a rare
# principal. Every other scope (public, metadata, link-local, an unplaced name) is reported.
INSIDE_SCOPES = frozenset({"private", "loopback", "unspecified"})
# A caller we could not read cannot be looked up: judged as a first tunnel (fail toward detection).
UNKEYED_READING = FirstSeenReading(first=True, previous=None)
# The service each port usually carries: a tunnel to one is remote access or data access.
SENSITIVE_PORTS = {
    22: "SSH",
    445: "SMB",
    1433: "SQL Server",
    1521: "Oracle",
    2375: "Docker API",
    2376: "Docker API (TLS)",
    2379: "etcd",
    3306: "MySQL",
    3389: "RDP",
    5432: "PostgreSQL",
    5439: "Redshift",
    5900: "VNC",
    5985: "WinRM",
    5986: "WinRM (TLS)",
    6379: "Redis",
    6443: "Kubernetes API",
    8200: "Vault",
    9042: "Cassandra",
    9200: "Elasticsearch",
    10250: "kubelet",
    11211: "Memcached",
    27017: "MongoDB",
}
# Names that resolve only inside a VPC (or are the node itself).
PRIVATE_NAME_SUFFIXES = (
    ".internal",
    ".local",
    ".localdomain",
    ".rds.amazonaws.com",
    ".cache.amazonaws.com",
    ".redshift.amazonaws.com",
    ".docdb.amazonaws.com",
    ".neptune.amazonaws.com",
    ".vpce.amazonaws.com",
)
# Where instance and container credentials are served (IMDS over IPv4 and IPv6, ECS agent).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2")
)
# The address space a VPC uses: RFC 1918, RFC 6598 (VPC secondary CIDRs) and IPv6 unique-local.
# Not `ipaddress.is_private`, which also counts documentation and benchmark ranges as private.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)

METADATA = DetectionMetadata(
    id="AWS.SSM.SessionTunnel",
    title="SSM Session Manager port-forwarding tunnel opened",
    description=(
        "A principal opened a Session Manager port-forwarding session: the managed node relays "
        "traffic to a host outside the VPC, to a host inside it for a principal that opened no "
        "tunnel within the history window, or to a remote-access or database port on itself."
    ),
    severity=Severity.MEDIUM,
    # T1651 too: the tunnel is opened through SSM's own remote-administration channel.
    attack=(
        CLOUD_ADMINISTRATION_COMMAND,
        AttackRef(
            tactic_id="TA0011",
            tactic="command-and-control",
            technique_id="T1572",
            technique="Protocol Tunneling",
        ),
        REMOTE_SERVICES,
    ),
    seed="Stratus Red Team aws.execution.ssm-start-session (ours: tunnel documents)",
    references=(
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.execution.ssm-start-session/",
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "session-manager-working-with-sessions-start.html",
        "https://attack.mitre.org/techniques/T1572/",
    ),
    false_positives=(
        "An engineer's first tunnel in the history window to a private database or cache "
        "through a jump node (MEDIUM once; their later tunnels inside the VPC are not "
        "reported).",
        "SSH or RDP over Session Manager by the node's administrators (LOW; MEDIUM the first "
        "time in the history window).",
    ),
    runbook=(
        "Confirm with the principal why it tunnelled to this host and port. For a public host, "
        "treat the node as an egress proxy: check what crossed it (VPC Flow Logs) and the "
        "principal's other calls. For a database port, review the database's login audit "
        "around the session time. Terminate the session (ssm:TerminateSession) if unexpected."
    ),
)


@dataclass(frozen=True)
class Tunnel:
    """Where one session's tunnel leads, and how that weighs."""

    kind: str
    """"remote_host" or "local_port"."""
    host: str | None
    port: str | None
    service: str | None
    scope: str | None
    """For remote hosts: "private", "public", "instance-metadata", "link-local", "loopback",
    "unspecified", "name (not resolved)"."""


class SessionTunnelDetection(
    OfCall[StartSessionCall], StatefulDetection[Sighting, FirstSeenReading]
):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = StartSessionCall

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        """Successful port-forwarding sessions only: a shell costs no state call."""
        call = self.call_of(event)
        return super().applies_to(event, settings) and call is not None and is_port_forwarding(call)

    def block(self, settings: Settings) -> FirstSeen:
        return FirstSeen(settings.history_window, attribute="tunnels")

    def observe(self, event: SsmEvent, settings: Settings, prior: Prior) -> Observed[Sighting]:
        del settings, prior
        return Observed(caller_key(event, "tunneller"), sighting(event))

    def evaluate_all(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> tuple[Verdict, ...]:
        if event.unkeyed_reason is not None:
            # No key, so no history to read: a public-host tunnel must still be reported.
            return self.judge(event, settings, UNKEYED_READING, prior)
        return super().evaluate_all(event, settings, state, prior)

    def judge(
        self, event: SsmEvent, settings: Settings, reading: FirstSeenReading, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        call = self.call_of(event)
        if call is None:
            return ()
        tunnel = tunnel_of(call)
        if tunnel is None:
            return ()
        rarity = _rarity(event, reading, settings.history_window.days)
        weighed = _severity(tunnel, rarity)
        if weighed is None:
            return ()
        severity, reasons = weighed
        if event.principal.is_aws_service:
            # Fleet Manager's remote desktop runs through ssm-guiconnect on a person's behalf:
            # the person is the principal; the severity stays, the reason says how it was opened.
            reasons += ("opened through an AWS service on the principal's behalf",)
        return (_verdict(event, call, tunnel, (severity, reasons), reading),)


def _verdict(
    event: SsmEvent,
    call: StartSessionCall,
    tunnel: Tunnel,
    weighed: tuple[Severity, tuple[str, ...]],
    reading: FirstSeenReading,
) -> Verdict:
    severity, reasons = weighed
    where = (
        f"{tunnel.host}:{tunnel.port}" if tunnel.kind == "remote_host" else f"port {tunnel.port}"
    )
    service = f" ({tunnel.service})" if tunnel.service else ""
    return Verdict.of_event(
        event,
        summary=(
            f"{event.principal.key} tunnelled through {call.target or 'a managed node'} "
            f"to {where}{service}"
        ),
        severity=severity,
        severity_reasons=reasons,
        resources=session_resources(event, call),
        context=session_context(event, call)
        | {
            "tunnel_kind": tunnel.kind,
            "remote_host": tunnel.host,
            "remote_port": tunnel.port,
            "local_port": _first(call.parameter("localPortNumber")),
            "port_service": tunnel.service,
            "remote_host_scope": tunnel.scope,
            "first_tunnel_in_window": reading.first,
            "previous_tunnel_event_id": reading.previous.event_id if reading.previous else None,
        },
    )


def is_port_forwarding(call: StartSessionCall) -> bool:
    """Whether a session forwards a port (reported or not): what makes a principal a known
    tunnel user. Shell and interactive-command sessions are not."""
    return (
        call.document_name in PORT_FORWARDING_DOCUMENTS
        or bool(call.parameter("host"))
        or bool(call.parameter("portNumber"))
    )


def tunnel_of(call: StartSessionCall) -> Tunnel | None:
    """The tunnel a session opens, when it is one worth reporting."""
    host = _first(call.parameter("host"))
    port = _first(call.parameter("portNumber"))
    if host is not None:
        return Tunnel("remote_host", host, port, _service(port), host_scope(host))
    if port is None and call.document_name == SSH_SESSION_DOCUMENT:
        port = "22"  # the document's default
    service = _service(port)
    if service is None:
        return None
    return Tunnel("local_port", None, port, service, None)


def host_scope(host: str) -> str:
    """Where a remote host is, as far as its text tells without resolving it."""
    text = host.strip().strip("[]").lower()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        private = text == "localhost" or text.endswith(PRIVATE_NAME_SUFFIXES)
        return "private" if private else "name (not resolved)"
    return _address_scope(address)


def _address_scope(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    checks = (
        ("instance-metadata", address in METADATA_ADDRESSES),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        (
            "private",
            any(address in net for net in PRIVATE_NETWORKS if net.version == address.version),
        ),
        ("unspecified", address.is_unspecified),
    )
    return next((scope for scope, holds in checks if holds), "public")


def _rarity(event: SsmEvent, reading: FirstSeenReading, days: int) -> str | None:
    """Why the principal counts as rare, or None when it tunnelled within the window."""
    if event.unkeyed_reason is not None:
        return f"the caller could not be read ({event.unkeyed_reason}): judged as a first tunnel"
    if reading.first:
        return f"no port-forwarding session by this principal in the previous {days} days"
    return None


def _severity(tunnel: Tunnel, rarity: str | None) -> tuple[Severity, tuple[str, ...]] | None:
    """Severity and its reasons, or None when the tunnel is not worth reporting."""
    if tunnel.kind == "local_port":
        if rarity is None:
            return Severity.LOW, (f"LOW: tunnel to {tunnel.service} on the node itself",)
        return Severity.MEDIUM, (f"raised to MEDIUM: {rarity}",)
    rare = (rarity,) if rarity else ()
    if tunnel.scope == "public":
        return Severity.HIGH, (
            "raised to HIGH: remote host is a public address (egress proxy)",
            *rare,
        )
    if tunnel.scope in {"instance-metadata", "link-local"}:
        return Severity.HIGH, (
            f"raised to HIGH: remote host is {tunnel.scope} (node credentials)",
            *rare,
        )
    if tunnel.scope in INSIDE_SCOPES:
        # Inside the VPC: the everyday jump to a private database, unless the principal is rare.
        return (METADATA.severity, rare) if rare else None
    return METADATA.severity, (f"remote host {tunnel.host} is a name we cannot place", *rare)


def _service(port: str | None) -> str | None:
    if port is None or not port.strip().isdigit():
        return None
    return SENSITIVE_PORTS.get(int(port.strip()))


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None
