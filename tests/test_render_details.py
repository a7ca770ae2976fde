"""The smaller rendering defects of issue 14.7, each from a real record where one exists."""

from __future__ import annotations

import re

from ssm_detect.render.asff import REMEDIATION_URL
from ssm_detect.render.sns_message import format_sns, render_chatbot, render_email
from tests.builders import Runner, send_command
from tests.test_render_asff import CASES, finding_for, imported, with_context

SEND = finding_for(*CASES[0])
CHAIN_CONTEXT = {
    "minutes_from_creation_to_execution": 12,
    "chain_window_hours": 24.0,
    "execution_was_fanout": False,
    "creation_time": "2025-02-19T16:02:39Z",
}


def tag_targeted() -> str:
    record = send_command(
        (), event_id="sc-tags", targets=[{"Key": "tag:Owner", "Values": ["alice"]}]
    )
    (finding,) = Runner().fired(record, "AWS.SSM.SendCommand")
    return render_email(finding) + render_chatbot(finding)["content"]["description"]


def test_tag_targeted_send_command_does_not_claim_zero_instances() -> None:
    rendered = tag_targeted()

    assert "Instance count: unknown: tag Owner=alice" in rendered
    assert "*Instance count:* `unknown: tag Owner=alice`" in rendered
    assert not re.search(r"Instance count:\**\s*`?0\b", rendered)


def test_subject_cuts_the_title_never_severity_or_account() -> None:
    long = SEND.model_copy(update={"title": "A very long detection title " * 8})

    subject = format_sns(long).subject

    assert len(subject) < 100
    assert subject.startswith("[ssm-detect] HIGH: A very long")
    assert subject.endswith("... (111122223333)")


def test_long_context_keys_are_readable_labels_apart_from_their_values() -> None:
    email = render_email(with_context(SEND, **CHAIN_CONTEXT))

    assert "  Minutes from creation to execution: 12\n" in email
    assert "  Chain window hours: 24\n" in email
    assert "  Execution was fanout: no\n" in email
    assert "minutes_from_cre" not in email


def test_one_time_format_in_the_email() -> None:
    email = render_email(with_context(SEND, **CHAIN_CONTEXT))

    assert "Creation time:  2025-02-19 16:02:39 UTC" in email
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", email.split("\nLINKS\n")[0])


def test_remediation_url_is_guidance_not_a_rule_source() -> None:
    for case in CASES:
        recommendation = imported(finding_for(*case))["Remediation"]["Recommendation"]
        assert recommendation["Url"] == REMEDIATION_URL
        assert "github.com" not in recommendation["Url"]
        assert "docs.aws.amazon.com" in recommendation["Url"]
