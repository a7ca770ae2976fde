"""Evidence a multi-event finding carries, in the shapes CONTRACTS.md fixes for the renderers.

- `contributing_event`: one entry of `context["contributing_events"]` (every finding decided by
  more than one event), so each event links to CloudTrail in its own region and account;
  `window_events` and `pair_events`: those entries for a window's and a pair's finding.
- `Actor`: one entry of `context["actors"]` (findings with more than one actor: a chain's
  creator and executor), and what a chain remembers of the half it has not seen yet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ssm_detect.findings import PrincipalRef
from ssm_detect.models.event_time import to_epoch
from ssm_detect.principal import Principal
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.correlate import Pair
from ssm_detect.state.distinct_window import Window

ACTOR_FIELDS = (
    "arn",
    "principal_key",
    "type",
    "session_name",
    "access_key_id",
    "source_ip",
    "user_agent",
    "event_id",
    "event_time",
    "region",
    "account_id",
)


def moment(epoch: int) -> datetime:
    """An event-time epoch (as the state blocks keep it) as a UTC time."""
    return datetime.fromtimestamp(epoch, tz=UTC)


def iso(epoch: int) -> str:
    return moment(epoch).isoformat().replace("+00:00", "Z")


def contributing_event(event_id: str, epoch: int, region: str, account_id: str) -> dict[str, str]:
    return {
        "event_id": event_id,
        "event_time": iso(epoch),
        "region": region,
        "account_id": account_id,
    }


def window_events(event: SsmEvent, window: Window, most: int) -> list[dict[str, str]]:
    """A window finding's `contributing_events`: the window's last `most` events, each in the
    region it kept (the deciding event's when it kept none), all in the event's account."""
    account, region = event.account_id, event.record.aws_region
    return [
        contributing_event(e.event_id, e.epoch, e.origin or region, account)
        for e in window.events[-most:]
    ]


def pair_events(pair: Pair, first: Actor, second: Actor) -> list[dict[str, str]]:
    """A correlation finding's `contributing_events`: each half in its own actor's region and
    account (the halves may come from different ones)."""
    return [
        contributing_event(m.event_id, m.epoch, actor.region, actor.account_id)
        for m, actor in ((pair.first, first), (pair.second, second))
    ]


@dataclass(frozen=True)
class Actor:
    """Who made one of a finding's calls, with the call's own time and place."""

    principal_key: str
    type: str
    event_id: str
    event_time: str
    region: str
    account_id: str
    arn: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    access_key_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    is_aws_service: bool = False

    @classmethod
    def of(cls, event: SsmEvent) -> Actor:
        principal, record = event.principal, event.record
        return cls(
            principal_key=principal.key,
            type=principal.type,
            event_id=event.event_id,
            event_time=iso(to_epoch(record.event_time)),
            region=record.aws_region,
            account_id=event.account_id,
            arn=principal.arn,
            role_arn=principal.role_arn,
            session_name=principal.session_name,
            access_key_id=principal.access_key_id,
            source_ip=record.source_ip_address,
            user_agent=record.user_agent,
            is_aws_service=principal.is_aws_service,
        )

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Actor:
        """From what a state block stored (`as_data`); missing or odd values become None."""

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        return cls(
            principal_key=text("principal_key") or "unknown",
            type=text("type") or "Unknown",
            event_id=text("event_id") or "unknown",
            event_time=text("event_time") or "",
            region=text("region") or "",
            account_id=text("account_id") or "",
            arn=text("arn"),
            role_arn=text("role_arn"),
            session_name=text("session_name"),
            access_key_id=text("access_key_id"),
            source_ip=text("source_ip"),
            user_agent=text("user_agent"),
            is_aws_service=data.get("is_aws_service") is True,
        )

    def as_data(self) -> dict[str, Any]:
        return asdict(self)

    def as_context(self) -> dict[str, str | None]:
        """The contract's actor: exactly `ACTOR_FIELDS`."""
        data = self.as_data()
        return {name: data[name] for name in ACTOR_FIELDS}

    def principal(self) -> Principal:
        return Principal(
            key=self.principal_key,
            type=self.type,
            arn=self.arn,
            role_arn=self.role_arn,
            session_name=self.session_name,
            access_key_id=self.access_key_id,
            is_aws_service=self.is_aws_service,
        )

    def principal_ref(self) -> PrincipalRef:
        """`principal()` as a finding names it: the finding model holds the same fields."""
        return PrincipalRef(**asdict(self.principal()))
