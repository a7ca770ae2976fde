"""Evidence of multi-event findings: the actors, and the events each half links to."""

from __future__ import annotations

from dataclasses import astuple, replace

from detections.evidence import Actor, pair_events
from ssm_detect.models.event_time import to_epoch
from ssm_detect.state.correlate import Mention, Pair, Side
from tests.builders import T0, parse, send_command


def test_actor_principal_ref_names_the_callers_principal_before_and_after_storage() -> None:
    # GIVEN the actor of a real SendCommand (an assumed role with a session and a key)
    event = parse(send_command())
    actor = Actor.of(event)

    # WHEN it is named as a finding names a principal, directly and after a state round trip
    ref = actor.principal_ref()
    stored = Actor.from_data(actor.as_data()).principal_ref()

    # THEN every field is the caller's own
    principal = event.principal
    assert astuple(principal) == (
        ref.key,
        ref.type,
        ref.arn,
        ref.role_arn,
        ref.session_name,
        ref.access_key_id,
        ref.is_aws_service,
    )
    assert principal.role_arn
    assert principal.access_key_id
    assert stored == ref


def test_pair_events_link_each_half_in_its_own_actors_region_and_account() -> None:
    # GIVEN a pair whose halves were made in different accounts and regions
    first = Actor.of(parse(send_command(event_id="one")))
    second = replace(first, event_id="two", region="eu-west-1", account_id="444455556666")
    start = to_epoch(T0)
    pair = Pair(Mention(start, "one", Side.FIRST), Mention(start + 60, "two", Side.SECOND))

    # WHEN its contributing events are listed
    listed = pair_events(pair, first, second)

    # THEN each half names its own place, in order
    assert [(e["event_id"], e["region"], e["account_id"]) for e in listed] == [
        ("one", first.region, first.account_id),
        ("two", "eu-west-1", "444455556666"),
    ]
