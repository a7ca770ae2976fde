"""Typed views of the finding's multi-event context, shared by every rendering.

Producers write two context entries whose shape is fixed in the team's contracts:
- `contributing_events`: one `{"event_id", "event_time", "region", "account_id"}` per event that
  decided the finding (fan-out windows, chains, bursts);
- `actors`: role name ("creator", "executor", "configured_by", ...) -> one actor
  (`arn`, `principal_key`, `type`, `session_name`, `access_key_id`, `source_ip`, `user_agent`,
  `event_id`, `event_time`, `region`, `account_id`).

Context is detection output that crossed a JSON round trip at times (ledger, replay files), so
these readers accept anything and keep what has the expected shape: a malformed entry is shown
as far as it is valid, never fails a rendering (fail toward detection).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from ssm_detect.findings import Finding

CONTRIBUTING_EVENTS = "contributing_events"
ACTORS = "actors"
MAX_ACTORS = 8
MAX_CONTRIBUTING = 500


@dataclass(frozen=True)
class EventPlace:
    """Where one CloudTrail event happened: its id, time, account and region."""

    event_id: str
    event_time: str | None
    region: str
    account_id: str


@dataclass(frozen=True)
class Actor:
    """One of the people (or roles) a multi-actor finding names, with its role in it."""

    role: str
    arn: str | None = None
    principal_key: str | None = None
    type: str | None = None
    session_name: str | None = None
    access_key_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    event_id: str | None = None
    event_time: str | None = None
    region: str | None = None
    account_id: str | None = None

    @property
    def identity(self) -> str | None:
        """The best single name for the actor: its ARN, else its principal key."""
        return self.arn or self.principal_key

    def items(self) -> list[tuple[str, str]]:
        """Every known field but the role, in declaration order, as text."""
        return [
            (f.name, value)
            for f in fields(self)
            if f.name != "role" and isinstance(value := getattr(self, f.name), str) and value
        ]


_ACTOR_FIELDS = tuple(f.name for f in fields(Actor) if f.name != "role")


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, Mapping | Sequence) and not isinstance(value, str)):
        return None
    text = str(value)
    return text if text.strip() else None


def contributing_events(finding: Finding) -> list[EventPlace]:
    """Each deciding event with its own region and account (the finding's where unknown).

    Events listed in `event_ids` but not in the context are added with the finding's region and
    account, so every event gets a link; listed order first, then the remaining ids.
    """
    raw = finding.context.get(CONTRIBUTING_EVENTS)
    places: dict[str, EventPlace] = {}
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        for entry in raw[:MAX_CONTRIBUTING]:
            if not isinstance(entry, Mapping):
                continue
            event_id = _text(entry.get("event_id"))
            if event_id is None or event_id in places:
                continue
            places[event_id] = EventPlace(
                event_id=event_id,
                event_time=_text(entry.get("event_time")),
                region=_text(entry.get("region")) or finding.region,
                account_id=_text(entry.get("account_id")) or finding.account_id,
            )
    for event_id in finding.event_ids:
        if event_id not in places:
            places[event_id] = EventPlace(event_id, None, finding.region, finding.account_id)
    return list(places.values())


def event_place(finding: Finding, event_id: str) -> EventPlace:
    """Where one of the finding's events happened."""
    for place in contributing_events(finding):
        if place.event_id == event_id:
            return place
    return EventPlace(event_id, None, finding.region, finding.account_id)


def actors(finding: Finding) -> list[Actor]:
    """The finding's actors by role, in the order the producer listed them."""
    raw = finding.context.get(ACTORS)
    if not isinstance(raw, Mapping):
        return []
    found: list[Actor] = []
    for role, entry in list(raw.items())[:MAX_ACTORS]:
        if not isinstance(entry, Mapping):
            continue
        values = {name: _text(entry.get(name)) for name in _ACTOR_FIELDS}
        found.append(Actor(role=str(role), **values))
    return found


def actor_label(role: str) -> str:
    """`configured_by` -> `Configured by`."""
    words = role.replace("_", " ").replace("-", " ").strip()
    return (words[:1].upper() + words[1:]) or "Actor"
