"""Where things are (issue 14.3, 14.4, 14.7): each event and resource in its own region and
account, the Security Hub link where the finding is imported, both actors of a chain, and the
ASFF fields Security Hub needs on every finding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from detections import all_detections
from detections.resources import instance_resource
from ssm_detect.event_names import DETECTED_EVENT_NAMES
from ssm_detect.findings import Finding, Resource, ResourceType
from ssm_detect.render.asff import api_call
from ssm_detect.render.sns_message import (
    RenderOptions,
    format_sns,
    render_chatbot,
    render_email,
)
from tests.test_render_asff import (
    CASES,
    SECURITY_ACCOUNT,
    assert_valid_asff,
    finding_for,
    imported,
    with_context,
)

FANOUT = finding_for(*CASES[1])
SEND = finding_for(*CASES[0])
MEMBER = "111122223333"
OTHER_MEMBER = "444455556666"
EARLY = "0e0e0e0e-1111-2222-3333-444444444444"
LATE = FANOUT.event_ids[-1]
CREATOR_ROLE = f"arn:aws:iam::{MEMBER}:role/ci-deployer"
EXECUTOR_ROLE = f"arn:aws:iam::{OTHER_MEMBER}:role/ops-admin"


def across_regions() -> Finding:
    """A fan-out window whose first event was in us-west-2 and whose last, in eu-west-1."""
    return with_context(
        FANOUT.model_copy(
            update={
                "region": "eu-west-1",
                "event_ids": (EARLY, LATE),
                "resources": (
                    Resource(
                        type=ResourceType.EC2_INSTANCE,
                        id=f"arn:aws:ec2:us-west-2:{MEMBER}:instance/i-0aaaaaaaaaaaaaaaa",
                        label="i-0aaaaaaaaaaaaaaaa",
                        region="us-west-2",
                    ),
                    Resource(
                        type=ResourceType.EC2_INSTANCE,
                        id=f"arn:aws:ec2:eu-west-1:{MEMBER}:instance/i-0bbbbbbbbbbbbbbbb",
                        label="i-0bbbbbbbbbbbbbbbb",
                    ),
                ),
            }
        ),
        contributing_events=[
            {
                "event_id": EARLY,
                "event_time": "2025-02-19T16:02:39Z",
                "region": "us-west-2",
                "account_id": MEMBER,
            },
            {
                "event_id": LATE,
                "event_time": "2025-02-19T16:32:39Z",
                "region": "eu-west-1",
                "account_id": MEMBER,
            },
        ],
    )


def actor(role_arn: str, *, session: str, key: str, ip: str, event: str, account: str) -> Any:
    return {
        "arn": role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")
        + f"/{session}",
        "principal_key": role_arn,
        "type": "AssumedRole",
        "session_name": session,
        "access_key_id": key,
        "source_ip": ip,
        "user_agent": "aws-cli/2.15.0",
        "event_id": event,
        "event_time": "2025-02-19T16:02:39Z",
        "region": "us-west-2",
        "account_id": account,
    }


def chain() -> Finding:
    return with_context(
        SEND.model_copy(update={"detection_id": "AWS.SSM.CreatedDocumentExecuted"}),
        actors={
            "creator": actor(
                CREATOR_ROLE,
                session="pipeline-run-77",
                key="ASIACREATOR000000001",
                ip="198.51.100.7",
                event=EARLY,
                account=MEMBER,
            ),
            "executor": actor(
                EXECUTOR_ROLE,
                session="mallory",
                key="ASIAEXECUTOR00000002",
                ip="203.0.113.50",
                event=LATE,
                account=OTHER_MEMBER,
            ),
        },
    )


def test_resource_keeps_its_own_region_and_account_in_asff() -> None:
    document = imported(across_regions(), account=SECURITY_ACCOUNT, region="eu-west-1")

    assert_valid_asff(document)
    regions = {r["Id"].rsplit("/", 1)[-1]: r.get("Region") for r in document["Resources"]}
    assert regions["i-0aaaaaaaaaaaaaaaa"] == "us-west-2"
    assert regions["i-0bbbbbbbbbbbbbbbb"] == "eu-west-1"


def test_asff_region_is_the_events_and_source_url_opens_the_decisive_events_region() -> None:
    finding = across_regions().model_copy(update={"region": "us-east-2"})

    document = imported(finding, account=SECURITY_ACCOUNT, region="eu-west-1")

    assert document["Region"] == "us-east-2"
    assert document["SourceUrl"] == (
        "https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1"
        f"#/events/{LATE}"
    )


def test_each_cloudtrail_link_opens_its_events_own_region() -> None:
    email = render_email(across_regions())

    assert (
        f"https://us-west-2.console.aws.amazon.com/cloudtrailv2/home?region=us-west-2#/events/{EARLY}"
    ) in email
    assert (
        f"https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events/{LATE}"
    ) in email
    assert (
        f"CloudTrail event {EARLY} (open in account {MEMBER}, us-west-2, 2025-02-19 16:02:39 UTC)"
    ) in email
    assert "i-0aaaaaaaaaaaaaaaa (us-west-2)" in email  # an instance outside the finding's region


def test_security_hub_link_opens_the_region_and_account_that_import_the_finding() -> None:
    """A us-west-2 event, imported by the detector in eu-west-1 under the security account."""
    options = RenderOptions(import_region="eu-west-1", import_account=SECURITY_ACCOUNT)
    finding = SEND  # happened in us-west-2

    email = render_email(finding, options)
    chatbot = render_chatbot(finding, options)

    link = "https://eu-west-1.console.aws.amazon.com/securityhub/home?region=eu-west-1#/findings"
    assert link in email
    assert f"Security Hub finding (open in account {SECURITY_ACCOUNT}, eu-west-1)" in email
    assert any(link in step for step in chatbot["content"]["nextSteps"])
    assert "securityhub/home?region=us-west-2" not in email
    assert "cloudtrailv2/home?region=us-west-2" in email  # the event itself stays in us-west-2


def test_chain_shows_both_actors_in_email() -> None:
    email = render_email(chain())

    actors = email.split("\nACTORS\n", 1)[1].split("\n\n", 1)[0]
    for value in (
        "Creator:",
        "Executor:",
        "pipeline-run-77",
        "mallory",
        "ASIACREATOR000000001",
        "ASIAEXECUTOR00000002",
        "198.51.100.7",
        "203.0.113.50",
        OTHER_MEMBER,
        EARLY,
        LATE,
    ):
        assert value in actors, value


def test_chain_shows_both_actors_in_slack() -> None:
    description = render_chatbot(chain())["content"]["description"]

    creator = next(line for line in description.split("\n") if line.startswith("*Creator:*"))
    executor = next(line for line in description.split("\n") if line.startswith("*Executor:*"))
    assert "ci-deployer/pipeline-run-77" in creator
    assert "ASIACREATOR000000001" in creator
    assert "198.51.100.7" in creator
    assert "ops-admin/mallory" in executor
    assert "ASIAEXECUTOR00000002" in executor
    assert "203.0.113.50" in executor


def test_chain_shows_both_actors_in_asff() -> None:
    document = imported(chain(), account=SECURITY_ACCOUNT)

    assert_valid_asff(document)
    fields = document["ProductFields"]
    assert fields["ssm-detect/actor/creator/session_name"] == "pipeline-run-77"
    assert fields["ssm-detect/actor/creator/access_key_id"] == "ASIACREATOR000000001"
    assert fields["ssm-detect/actor/executor/source_ip"] == "203.0.113.50"
    assert fields["ssm-detect/actor/executor/account_id"] == OTHER_MEMBER
    ids = [r["Id"] for r in document["Resources"]]
    assert CREATOR_ROLE in ids
    assert EXECUTOR_ROLE in ids
    assert "AWS::IAM::AccessKey:ASIAEXECUTOR00000002" in ids
    assert f"AWS::::Account:{OTHER_MEMBER}" in ids
    assert "ssm-detect/context/actors" not in fields


def test_malformed_actors_and_events_are_shown_as_far_as_valid() -> None:
    odd = with_context(
        SEND,
        actors={"creator": "not a mapping", "executor": {"arn": None, "session_name": 7}},
        contributing_events=[{"event_id": None}, "x", {"event_id": "e-1", "region": 5}],
    )

    email = render_email(odd)
    document = imported(odd)

    assert "Executor:" in email
    assert "e-1" in email
    assert_valid_asff(document)
    format_sns(odd)


def test_a_finding_without_resources_still_names_one() -> None:
    bare = SEND.model_copy(update={"resources": ()})

    document = imported(bare, account=MEMBER)

    assert_valid_asff(document)
    assert document["Resources"] == [
        {"Type": "AwsAccount", "Id": f"AWS::::Account:{MEMBER}", "Partition": "aws"}
    ]


def test_hybrid_node_is_a_managed_instance_not_an_ec2_instance() -> None:
    node = instance_resource("mi-0123456789abcdef0", "us-west-2", MEMBER, "aws")
    finding = SEND.model_copy(update={"resources": (node,)})

    document = imported(finding)

    assert node.type is ResourceType.MANAGED_INSTANCE
    resource = document["Resources"][0]
    assert resource["Type"] == "Other"
    assert resource["Id"] == f"arn:aws:ssm:us-west-2:{MEMBER}:managed-instance/mi-0123456789abcdef0"
    assert resource["Details"]["Other"]["ssm-detect/kind"] == "SsmManagedInstance"
    assert "mi-0123456789abcdef0" in render_email(finding)


@pytest.mark.parametrize("detection", [d.metadata.id for d in all_detections()])
def test_every_detection_names_its_api_call(detection: str) -> None:
    finding = SEND.model_copy(update={"detection_id": detection, "context": {}, "api_call": None})

    call = imported(finding)["Action"]["AwsApiCallAction"]

    assert call["Api"] in DETECTED_EVENT_NAMES
    assert api_call(finding) == call["Api"]
    assert "API call:       ssm:-" not in render_email(finding)


def test_product_fields_hold_json_kinds_not_python_reprs() -> None:
    finding = with_context(
        SEND, content_hidden=False, chain_window_hours=24.0, ratio=0.5, flags=[{"on": True}]
    )

    fields = imported(finding)["ProductFields"]

    assert fields["ssm-detect/context/content_hidden"] == "false"
    assert fields["ssm-detect/context/chain_window_hours"] == "24"
    assert fields["ssm-detect/context/ratio"] == "0.5"
    assert json.loads(fields["ssm-detect/context/flags"]) == [{"on": True}]


def test_many_actors_stay_within_the_50_product_fields() -> None:
    many = {
        f"role{n}": actor(
            CREATOR_ROLE,
            session=f"s{n}",
            key=f"ASIA{n:016d}",
            ip="198.51.100.7",
            event=EARLY,
            account=MEMBER,
        )
        for n in range(8)
    }
    finding = with_context(chain(), actors=many, **{f"extra_{n}": n for n in range(40)})

    document = imported(finding)

    assert_valid_asff(document)
    fields = document["ProductFields"]
    assert fields["ssm-detect/actor/role0/arn"].endswith("/s0")
    assert sum(key.startswith("ssm-detect/context/") for key in fields) >= 10
