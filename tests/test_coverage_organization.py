"""`ssm-detect coverage --organization` (issue 15, point 2): the expected accounts and regions
come from AWS Organizations and `account:ListRegions`.

Organizations is moto's (a real organisation with member accounts, one of them closed). moto
5.2 does not implement the Account Management API's `ListRegions`, so that one client is a real
boto3 `account` client under botocore's `Stubber`, at the adapter boundary: every request is
checked against the service model (parameter names, `RegionOptStatusContains` values, that
`AccountId` is left out for the caller's own account) and answered with the pages we give it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ssm_detect.cli import main
from ssm_detect.coverage import expected_from_organization
from ssm_detect.heartbeat import Beat, Source
from ssm_detect.heartbeat_dynamodb import DynamoDbHeartbeats
from ssm_detect.state.tables import ensure_state_table

REGION = "us-east-1"
TABLE = "ssm-detect-coverage"
ENABLED = ["ENABLED", "ENABLED_BY_DEFAULT"]
DEFAULT_ACCOUNT_ID = "123456789012"
"""moto's own account: the caller (STS) and the organisation's management account."""


@pytest.fixture
def organization(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A moto organisation: the management account (moto's own, which is also the caller)
    and three members, the last one closed (SUSPENDED)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("organizations", region_name=REGION)
        client.create_organization(FeatureSet="ALL")
        members = {}
        for name in ("workloads", "data", "closed"):
            status = client.create_account(AccountName=name, Email=f"{name}@example.com")
            members[name] = status["CreateAccountStatus"]["AccountId"]
        client.close_account(AccountId=members["closed"])
        yield members


def regions_page(*names: str, next_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "Regions": [{"RegionName": n, "RegionOptStatus": "ENABLED_BY_DEFAULT"} for n in names]
    }
    if next_token:
        page["NextToken"] = next_token
    return page


def stub_regions(stubber: Stubber, members: dict[str, str]) -> None:
    """ListRegions answers in the order the adapter must ask: its own account first (no
    AccountId: the API refuses it for the caller), then each ACTIVE member; `workloads` over
    two pages. The closed account is never asked."""
    stubber.add_response(
        "list_regions", regions_page("us-east-1", "eu-west-1"), {"RegionOptStatusContains": ENABLED}
    )
    stubber.add_response(
        "list_regions",
        regions_page("us-east-1", next_token="page-2"),
        {"RegionOptStatusContains": ENABLED, "AccountId": members["workloads"]},
    )
    stubber.add_response(
        "list_regions",
        regions_page("ap-south-1"),
        {
            "RegionOptStatusContains": ENABLED,
            "AccountId": members["workloads"],
            "NextToken": "page-2",
        },
    )
    stubber.add_response(
        "list_regions",
        regions_page("eu-west-1"),
        {"RegionOptStatusContains": ENABLED, "AccountId": members["data"]},
    )


def test_expected_from_organization_lists_enabled_regions_of_active_accounts(
    organization: dict[str, str],
) -> None:
    account = boto3.client("account", region_name=REGION)
    with Stubber(account) as stubber:
        stub_regions(stubber, organization)

        sources = expected_from_organization(
            boto3.client("organizations", region_name=REGION), account, DEFAULT_ACCOUNT_ID
        )

        stubber.assert_no_pending_responses()
    assert sorted(sources) == sorted(
        [
            Source(DEFAULT_ACCOUNT_ID, "us-east-1"),
            Source(DEFAULT_ACCOUNT_ID, "eu-west-1"),
            Source(organization["workloads"], "us-east-1"),
            Source(organization["workloads"], "ap-south-1"),
            Source(organization["data"], "eu-west-1"),
        ]
    )
    assert organization["closed"] not in {s.account for s in sources}


@pytest.fixture
def stubbed_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The CLI builds its own clients: hand it the stubbed `account` client, moto for the rest
    (STS answers with moto's account, the organisation's management account)."""
    account = boto3.client("account", region_name=REGION)
    real_client: Any = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        return account if service == "account" else real_client(service, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", client)
    with Stubber(account) as stubber:
        yield stubber


def test_coverage_command_with_organization_names_every_unwatched_region(
    organization: dict[str, str], stubbed_account: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    ensure_state_table(dynamodb, TABLE)
    store = DynamoDbHeartbeats(dynamodb, TABLE)
    now = datetime.now(UTC)
    store.record(Beat(Source(DEFAULT_ACCOUNT_ID, "us-east-1"), now - timedelta(minutes=4)))
    store.record(Beat(Source(DEFAULT_ACCOUNT_ID, "eu-west-1"), now - timedelta(minutes=2)))
    store.record(Beat(Source(organization["workloads"], "us-east-1"), now - timedelta(hours=3)))
    store.record(Beat(Source(organization["data"], "eu-west-1"), now - timedelta(minutes=1)))
    stub_regions(stubbed_account, organization)

    argv = ["coverage", "--table", TABLE, "--region", REGION, "--organization"]
    status = main([*argv, "--exclude-region", "ap-south-1"])

    out = capsys.readouterr().out
    stubbed_account.assert_no_pending_responses()
    assert status == 1  # workloads/us-east-1 is silent
    assert f"SILENT     {organization['workloads']} us-east-1" in out
    assert f"WATCHED    {organization['data']} eu-west-1" in out
    assert "ap-south-1" not in out  # an SCP denies it: not expected anywhere
    assert organization["closed"] not in out
    assert out.strip().endswith("3 watched, 1 silent, 0 unwatched, 0 unexpected")


def test_coverage_command_with_organization_without_rights_says_aws_refused(
    organization: dict[str, str], stubbed_account: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not the management account nor a delegated administrator of Account Management."""
    del organization
    stubbed_account.add_client_error(
        "list_regions", service_error_code="AccessDeniedException", http_status_code=403
    )

    status = main(["coverage", "--table", TABLE, "--region", REGION, "--organization"])

    err = capsys.readouterr().err
    assert status == 1
    assert "ssm-detect: AWS refused:" in err
    assert "AccessDeniedException" in err
