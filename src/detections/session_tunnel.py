"""AWS.SSM.SessionTunnel: a Session Manager port-forwarding tunnel (issue 13, point 2).

`StartSession` with a port-forwarding document makes a managed node a relay: no inbound rule,
no bastion, no SSH key, and CloudTrail shows where the tunnel leads (`host`, `portNumber`).
- **Through the node to another host** (`AWS-StartPortForwardingSessionToRemoteHost`, or any
  session document given a `host`): MEDIUM, reported with host and port; HIGH when the host is
  outside private address space (a public IP: the node becomes an egress proxy) or link-local
  (169.254.169.254, fd00:ec2::254: the node's instance credentials through the tunnel).
- **To a port on the node itself** (`AWS-StartPortForwardingSession`, `AWS-StartSSHSession`, or
  a custom document with `portNumber`): LOW, and only for ports that are a remote-access or data
  service (SSH, RDP, WinRM, databases, caches, Docker, Kubernetes): a tunnel to 8080 is how
  developers look at a web app and is not reported.

Host names are not resolved (detections do no I/O): a name is "private" when it ends in a suffix
that only resolves inside a VPC (`.internal`, RDS/ElastiCache/Redshift/DocumentDB endpoints, ...)
and "not resolved" otherwise; neither raises the severity, the finding names the host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    AttackRef,
    CallDetection,
    DetectionMetadata,
    Verdict,
)
from detections.session_context import session_context, session_resources
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent, StartSessionCall

SSH_SESSION_DOCUMENT = "AWS-StartSSHSession"
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
        "traffic to another host or to a remote-access or database port on itself."
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
        AttackRef(
            tactic_id="TA0008",
            tactic="lateral-movement",
            technique_id="T1021",
            technique="Remote Services",
        ),
    ),
    seed="Stratus Red Team aws.execution.ssm-start-session (ours: tunnel documents)",
    references=(
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.execution.ssm-start-session/",
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "session-manager-working-with-sessions-start.html",
        "https://attack.mitre.org/techniques/T1572/",
    ),
    false_positives=(
        "Engineers reaching a private database or cache through a jump node (remote host in "
        "the VPC, MEDIUM).",
        "SSH or RDP over Session Manager by the node's administrators (LOW).",
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


class SessionTunnelDetection(CallDetection[StartSessionCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = StartSessionCall

    def judge(self, event: SsmEvent, call: StartSessionCall, settings: Settings) -> Verdict | None:
        del settings
        tunnel = tunnel_of(call)
        if tunnel is None:
            return None
        severity, reasons = _severity(tunnel, event)
        where = (
            f"{tunnel.host}:{tunnel.port}"
            if tunnel.kind == "remote_host"
            else f"port {tunnel.port}"
        )
        service = f" ({tunnel.service})" if tunnel.service else ""
        return Verdict(
            summary=(
                f"{event.principal.key} tunnelled through {call.target or 'a managed node'} "
                f"to {where}{service}"
            ),
            decisive_event_id=event.event_id,
            event_ids=(event.event_id,),
            first_seen=event.record.event_time,
            last_seen=event.record.event_time,
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
            },
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


def _severity(tunnel: Tunnel, event: SsmEvent) -> tuple[Severity, tuple[str, ...]]:
    if tunnel.kind == "local_port":
        severity = Severity.LOW
        reasons = [f"LOW: tunnel to {tunnel.service} on the node itself"]
    else:
        severity = METADATA.severity
        reasons = []
        if tunnel.scope == "public":
            severity = Severity.HIGH
            reasons.append("raised to HIGH: remote host is a public address (egress proxy)")
        elif tunnel.scope in {"instance-metadata", "link-local"}:
            severity = Severity.HIGH
            reasons.append(f"raised to HIGH: remote host is {tunnel.scope} (node credentials)")
    if event.principal.is_aws_service:
        # Fleet Manager's remote desktop runs through ssm-guiconnect on a person's behalf: the
        # person is the principal; the severity stays, the reason says how it was opened.
        reasons.append("opened through an AWS service on the principal's behalf")
    return severity, tuple(reasons)


def _service(port: str | None) -> str | None:
    if port is None or not port.strip().isdigit():
        return None
    return SENSITIVE_PORTS.get(int(port.strip()))


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None
