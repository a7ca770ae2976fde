"""render.asff: findings from real event files as Security Hub ASFF, checked field by field.

Also home of the snapshot helper and the pipeline-built findings that the SNS tests share.
Snapshots live in tests/snapshots/; `SNAPSHOT_UPDATE=1 pytest` rewrites them.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ssm_detect.findings import Finding, Resource, ResourceType
from ssm_detect.ingest import BadEvent, Ignored, records_in, to_event
from ssm_detect.render import asff
from ssm_detect.render.asff import asff_size, format_asff
from ssm_detect.settings import Settings
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
IMPORTED_AT = datetime(2025, 3, 20, 12, 0, 0, 123456, tzinfo=UTC)
SECURITY_ACCOUNT = "999988887777"

# (event file, detection) -> the finding the pipeline builds; each pair is snapshot-tested.
CASES = (
    ("panther_send_command_three_instances.json", "AWS.SSM.SendCommand"),
    ("panther_send_command_three_instances.json", "AWS.SSM.DistributedCommand"),
    ("create_document_json_content.json", "AWS.SSM.RareCommandDocumentCreator"),
    ("send_command_hostile_comment.json", "AWS.SSM.SendCommand"),
)
CASE_IDS = [f"{Path(name).stem}-{detection.rsplit('.', 1)[-1]}" for name, detection in CASES]
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SEVERITY_LABELS = {"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
HOSTILE_CONTENT = (
    "<!channel> @here [approve](https://evil.example/x) *now* `rm -rf /`\r\n\x1b[2J\u202e\u200b"
)


def assert_snapshot(path: Path, actual: str) -> None:
    """Compare with the stored rendering; `SNAPSHOT_UPDATE=1` rewrites it instead."""
    if os.environ.get("SNAPSHOT_UPDATE") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"missing snapshot {path}: run `SNAPSHOT_UPDATE=1 pytest` to create it"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} changed; if intended, rerun with SNAPSHOT_UPDATE=1"


@cache
def findings_from(name: str) -> dict[str, Finding]:
    """Every finding one event file produces through the real pipeline, by detection id."""
    settings = Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    found: dict[str, Finding] = {}
    for raw in records_in(json.loads((EVENTS / name).read_text())):
        assert not isinstance(raw, BadEvent | Ignored)
        event = to_event(raw, settings.principal_keying)
        assert not isinstance(event, BadEvent | Ignored), name
        for finding in pipeline.process(event).findings:
            found[finding.detection_id] = finding
    return found


def finding_for(name: str, detection: str) -> Finding:
    return findings_from(name)[detection]


def with_context(finding: Finding, **context: Any) -> Finding:
    return finding.model_copy(update={"context": {**finding.context, **context}})


def imported(finding: Finding, account: str = "111122223333", **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "product_arn": None,
        "region": "us-west-2",
        "account": account,
        "updated_at": IMPORTED_AT,
        "created_at": IMPORTED_AT,
        "count": finding.count,
    }
    return format_asff(finding, **(arguments | kwargs))


def assert_valid_asff(document: dict[str, Any]) -> None:
    """The shape and limits Security Hub's BatchImportFindings documents, checked independently."""
    for field in (
        "SchemaVersion",
        "Id",
        "ProductArn",
        "GeneratorId",
        "AwsAccountId",
        "Types",
        "CreatedAt",
        "UpdatedAt",
        "Severity",
        "Title",
        "Description",
        "Resources",
    ):
        assert document.get(field), field
    assert document["SchemaVersion"] == "2018-10-08"
    assert re.fullmatch(
        r"arn:aws(-cn|-us-gov)?:securityhub:[a-z0-9-]+:\d{12}:product/\d{12}/default",
        document["ProductArn"],
    )
    assert re.fullmatch(r"\d{12}", document["AwsAccountId"])
    for stamp in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
        assert ISO_MS.match(document[stamp]), stamp
    assert document["CreatedAt"] <= document["UpdatedAt"]
    assert document["Severity"]["Label"] in SEVERITY_LABELS
    provider = document["FindingProviderFields"]
    assert provider["Severity"] == document["Severity"]
    assert provider["Types"] == document["Types"]
    assert 1 <= len(document["Types"]) <= 50
    assert all(t.startswith("TTPs/") for t in document["Types"])
    assert len(document["Title"]) <= 256
    assert len(document["Description"]) <= 1024
    assert 1 <= len(document["Resources"]) <= 32
    for resource in document["Resources"]:
        assert resource["Id"].strip()
        assert 1 <= len(resource["Type"]) <= 256
        assert resource.get("Partition", "aws") in {"aws", "aws-cn", "aws-us-gov"}
        assert len(resource.get("Region", "")) <= 16
        for key, value in resource.get("Details", {}).get("Other", {}).items():
            assert len(key) < 128
            assert 0 < len(value) < 1024
    action = document["Action"]
    assert action["ActionType"] == "AWS_API_CALL"
    assert len(action["AwsApiCallAction"].get("Api", "")) <= 128
    fields = document["ProductFields"]
    assert len(fields) <= 50
    for key, value in fields.items():
        assert len(key) <= 128
        assert 0 < len(value) <= 2048
        assert value.strip(), key
        assert "\n" not in value
        assert "\r" not in value
    recommendation = document.get("Remediation", {}).get("Recommendation", {})
    assert len(recommendation.get("Text", "")) <= 512
    assert asff_size(document) <= 240_000
    json.dumps(document, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(("name", "detection"), CASES, ids=CASE_IDS)
def test_asff_snapshot(name: str, detection: str) -> None:
    document = imported(finding_for(name, detection), account=SECURITY_ACCOUNT)

    assert_valid_asff(document)
    assert_snapshot(
        SNAPSHOTS / f"asff-{CASE_IDS[CASES.index((name, detection))]}.json",
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
    )


@pytest.mark.parametrize(("name", "detection"), CASES, ids=CASE_IDS)
def test_asff_required_fields_come_from_the_finding(name: str, detection: str) -> None:
    finding = finding_for(name, detection)

    document = imported(finding)

    assert_valid_asff(document)
    assert document["Id"] == finding.id
    assert document["GeneratorId"] == detection
    assert document["AwsAccountId"] == "111122223333"
    assert document["ProductArn"] == (
        "arn:aws:securityhub:us-west-2:111122223333:product/111122223333/default"
    )
    assert document["CreatedAt"] == document["UpdatedAt"] == "2025-03-20T12:00:00.123Z"
    assert document["Severity"] == {"Label": finding.severity.value, "Original": finding.severity}
    assert document["Title"] == finding.title
    assert document["SourceUrl"] == (
        "https://us-west-2.console.aws.amazon.com/cloudtrailv2/home?region=us-west-2"
        f"#/events/{finding.event_ids[-1]}"
    )
    assert document["ProductFields"]["ssm-detect/event_ids"] == ",".join(finding.event_ids)
    assert document["Remediation"]["Recommendation"]["Text"] == finding.runbook


def test_asff_types_say_what_the_finding_is_and_keep_the_seed_tags_as_tags() -> None:
    send = imported(finding_for(*CASES[0]))
    fanout = imported(finding_for(*CASES[1]))

    # SendCommand is T1651 (Execution); the Sigma seed's T1566.002 Phishing tag is not a type.
    assert send["Types"] == ["TTPs/Execution"]
    assert send["ProductFields"]["ssm-detect/seed_tags"] == "TA0001/T1566.002"
    assert "TA0002/T1651" in send["ProductFields"]["ssm-detect/mitre"]
    assert fanout["Types"] == ["TTPs/Execution"]
    assert "ssm-detect/seed_tags" not in fanout["ProductFields"]


def test_asff_resources_name_instances_document_and_principal() -> None:
    document = imported(finding_for(*CASES[0]))

    by_type: dict[str, list[str]] = {}
    for resource in document["Resources"]:
        by_type.setdefault(resource["Type"], []).append(resource["Id"])
    assert by_type["AwsEc2Instance"] == [
        "arn:aws:ec2:us-west-2:111122223333:instance/i-006e4c07b5fba8ad2",
        "arn:aws:ec2:us-west-2:111122223333:instance/i-01bf673280e708b0d",
        "arn:aws:ec2:us-west-2:111122223333:instance/i-020001cca1a2f2628",
    ]
    assert by_type["Other"] == ["arn:aws:ssm:us-west-2::document/AWS-RunShellScript"]
    assert by_type["AwsIamRole"] == [
        "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/us-west-2/SampleRole"
    ]
    assert by_type["AwsIamAccessKey"] == ["AWS::IAM::AccessKey:SAMPLE_ACCESS_KEY_ID"]
    assert "AwsAccount" not in by_type  # same account: no member account to name


def test_asff_action_is_the_api_call_from_the_source_ip() -> None:
    call = imported(finding_for(*CASES[0]))["Action"]["AwsApiCallAction"]

    assert call["Api"] == "SendCommand"
    assert call["ServiceName"] == "ssm.amazonaws.com"
    assert call["CallerType"] == "remoteIp"
    assert call["RemoteIpDetails"] == {"IpAddressV4": "1.2.3.4"}
    assert call["FirstSeen"] == call["LastSeen"] == "2025-02-19T16:32:39.000Z"
    created = imported(finding_for(*CASES[2]))["Action"]["AwsApiCallAction"]
    assert created["Api"] == "CreateDocument"


@pytest.mark.parametrize(
    ("source_ip", "expected"),
    [
        (
            "ssm.amazonaws.com",
            {"CallerType": "domain", "DomainDetails": {"Domain": "ssm.amazonaws.com"}},
        ),
        ("2001:db8::1", {"CallerType": "remoteIp"}),
        (None, {}),
        ("not an address", {}),
    ],
)
def test_asff_caller_type_follows_the_source(
    source_ip: str | None, expected: dict[str, Any]
) -> None:
    finding = finding_for(*CASES[0]).model_copy(update={"source_ip": source_ip})

    call = imported(finding)["Action"]["AwsApiCallAction"]

    caller = {
        k: v for k, v in call.items() if k in {"CallerType", "RemoteIpDetails", "DomainDetails"}
    }
    assert caller == expected


def test_asff_update_keeps_created_at_and_moves_updated_at_and_count() -> None:
    finding = finding_for(*CASES[1])
    later = IMPORTED_AT + timedelta(minutes=30)

    first = imported(finding)
    update = imported(finding, created_at=IMPORTED_AT, updated_at=later, count=4)

    assert first["Id"] == update["Id"]
    assert update["CreatedAt"] == first["CreatedAt"]
    assert update["UpdatedAt"] > first["UpdatedAt"]
    assert update["ProductFields"]["ssm-detect/count"] == "4"
    assert first["ProductFields"]["ssm-detect/count"] == "1"


def test_asff_rejects_an_update_older_than_the_creation() -> None:
    with pytest.raises(ValueError, match="earlier"):
        imported(finding_for(*CASES[0]), updated_at=IMPORTED_AT - timedelta(seconds=1))


def test_asff_rejects_naive_timestamps() -> None:
    naive = IMPORTED_AT.replace(tzinfo=None)

    with pytest.raises(ValueError, match="naive"):
        imported(finding_for(*CASES[0]), updated_at=naive, created_at=naive)


@pytest.mark.parametrize(
    ("region", "partition"),
    [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")],
)
def test_asff_default_product_arn_follows_the_partition(region: str, partition: str) -> None:
    document = imported(finding_for(*CASES[0]), region=region)

    assert document["ProductArn"] == (
        f"arn:{partition}:securityhub:{region}:111122223333:product/111122223333/default"
    )


def test_asff_configured_product_arn_is_used_as_given() -> None:
    arn = "arn:aws:securityhub:us-west-2:111122223333:product/111122223333/ssm-detect"

    assert imported(finding_for(*CASES[0]), product_arn=arn)["ProductArn"] == arn


def test_asff_cross_account_imports_under_the_security_account() -> None:
    """GIVEN activity in member account 111122223333, WHEN the security account imports it,
    THEN AwsAccountId is the caller (as Security Hub requires with the default product ARN) and
    the member account is named in ProductFields and Resources."""
    finding = finding_for(*CASES[1])

    document = imported(finding, account=SECURITY_ACCOUNT, region="eu-west-1")

    assert_valid_asff(document)
    assert document["AwsAccountId"] == SECURITY_ACCOUNT
    assert document["ProductArn"] == (
        f"arn:aws:securityhub:eu-west-1:{SECURITY_ACCOUNT}:product/{SECURITY_ACCOUNT}/default"
    )
    assert document["ProductFields"]["ssm-detect/member_account"] == "111122223333"
    assert document["ProductFields"]["ssm-detect/member_region"] == "us-west-2"
    account, *others = document["Resources"]
    assert account == {
        "Type": "AwsAccount",
        "Id": "AWS::::Account:111122223333",
        "Partition": "aws",
    }
    instances = [r for r in others if r["Type"] == "AwsEc2Instance"]
    assert instances
    assert all(":111122223333:instance/" in r["Id"] for r in instances)
    assert all(r["Region"] == "us-west-2" for r in instances)  # the member's region, not ours


def test_asff_caps_resources_at_32_keeping_principal_and_document() -> None:
    finding = finding_for(*CASES[1])
    instances = tuple(
        Resource(
            type=ResourceType.EC2_INSTANCE,
            id=f"arn:aws:ec2:us-west-2:111122223333:instance/i-{n:017x}",
            label=f"i-{n:017x}",
        )
        for n in range(60)
    )
    crowded = finding.model_copy(update={"resources": instances + finding.resources})

    resources = imported(crowded, account=SECURITY_ACCOUNT)["Resources"]

    assert len(resources) == 32
    types = [r["Type"] for r in resources]
    assert types[:4] == ["AwsAccount", "AwsIamRole", "AwsIamAccessKey", "Other"]
    assert types.count("AwsEc2Instance") == 28


def test_asff_300_kb_document_content_is_truncated_within_limits() -> None:
    finding = with_context(finding_for(*CASES[2]), content=HOSTILE_CONTENT * 4000)
    assert len(finding.context["content"]) >= 300_000

    document = imported(finding)

    assert_valid_asff(document)
    content = document["ProductFields"]["ssm-detect/context/content"]
    assert len(content) == 2048
    assert content.endswith("…")
    assert "\x1b" not in content
    assert "\u202e" not in content
    assert asff_size(document) < 20_000


def test_asff_many_huge_context_fields_stay_within_50_product_fields() -> None:
    huge = {f"field_{n:02d}": "x" * 300_000 for n in range(80)}
    finding = with_context(finding_for(*CASES[2]), **huge)

    document = imported(finding)

    assert_valid_asff(document)
    assert len(document["ProductFields"]) == 50


def test_asff_over_the_size_limit_drops_context_fields_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The size guard, exercised with a smaller limit (with the real limit the per-field caps
    already keep a finding far below 240 KB)."""
    finding = with_context(finding_for(*CASES[2]), content=HOSTILE_CONTENT * 4000)
    full = imported(finding)
    monkeypatch.setattr(asff, "MAX_FINDING_BYTES", asff_size(full) - 1000)

    document = imported(finding)

    assert asff_size(document) <= asff_size(full) - 1000
    fields = document["ProductFields"]
    assert "ssm-detect/context/content" not in fields  # the largest context field went first
    assert fields["ssm-detect/context_dropped"] == "true"
    assert fields["ssm-detect/member_account"] == "111122223333"
    for key in ("Id", "Title", "Description", "Resources", "Severity", "Types"):
        assert document[key] == full[key]


def test_asff_that_cannot_fit_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asff, "MAX_FINDING_BYTES", 500)

    with pytest.raises(ValueError, match="exceeds 500 bytes"):
        imported(finding_for(*CASES[0]))


def test_asff_hostile_principal_values_are_neutralised() -> None:
    finding = finding_for(*CASES[3])
    hostile = finding.principal.model_copy(update={"session_name": "ops\u202egnp.exe\x1b[2J\r\nX"})
    document = imported(finding.model_copy(update={"principal": hostile}))

    assert_valid_asff(document)
    session = document["ProductFields"]["ssm-detect/session_name"]
    assert session == "ops\\u202egnp.exe\\x1b[2J X"
    assert "<!channel>" in document["ProductFields"]["ssm-detect/user_agent"]  # kept, as data
