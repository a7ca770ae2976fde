"""An actor (who made one of a finding's calls) names the caller as the finding model does."""

from __future__ import annotations

from dataclasses import astuple

from detections.evidence import Actor
from tests.builders import parse, send_command


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
