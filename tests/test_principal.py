"""Who counts as one actor: the principal key for every identity type, and AWS service calls."""

from __future__ import annotations

from typing import Any

import pytest

from ssm_detect.principal import Principal, PrincipalKeying, principal_of
from tests.builders import load_record, parse


def principal(record: dict[str, Any], keying: PrincipalKeying = PrincipalKeying.ROLE) -> Principal:
    return principal_of(parse(record, keying).record, keying)


def identity(record: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = record["userIdentity"]
    return found


def test_principal_iam_user_keys_on_user_arn() -> None:
    record = load_record("send_command_iam_user.json")

    found = principal(record)

    assert found.key == identity(record)["arn"]
    assert found.type == "IAMUser"
    assert found.access_key_id == identity(record)["accessKeyId"]
    assert found.role_arn is None
    assert not found.is_aws_service


def test_principal_iam_user_without_arn_keys_on_account_and_user_name() -> None:
    record = load_record("send_command_iam_user.json")
    del identity(record)["arn"]

    found = principal(record)

    user = identity(record)
    assert found.key == f"arn:aws:iam::{user['accountId']}:user/{user['userName']}"


def test_principal_assumed_role_keys_on_role_arn() -> None:
    record = load_record("send_command_success.json")
    issuer = identity(record)["sessionContext"]["sessionIssuer"]

    found = principal(record)

    assert found.key == issuer["arn"]
    assert found.role_arn == issuer["arn"]
    assert found.arn == identity(record)["arn"]
    assert found.session_name == identity(record)["arn"].rsplit("/", 1)[-1]


def test_principal_assumed_role_sessions_of_one_role_share_a_key() -> None:
    first = load_record("fanout_same_role_two_sessions_first.json")
    second = load_record("fanout_same_role_two_sessions_second.json")
    assert identity(first)["arn"] != identity(second)["arn"]

    assert principal(first).key == principal(second).key


def test_principal_assumed_role_session_keying_uses_session_arn() -> None:
    first = load_record("fanout_same_role_two_sessions_first.json")
    second = load_record("fanout_same_role_two_sessions_second.json")

    found = principal(first, PrincipalKeying.SESSION)

    assert found.key == identity(first)["arn"]
    assert found.key != principal(second, PrincipalKeying.SESSION).key


def test_principal_assumed_role_without_issuer_falls_back_to_session_arn() -> None:
    record = load_record("send_command_success.json")
    del identity(record)["sessionContext"]

    found = principal(record)

    assert found.key == identity(record)["arn"]
    assert found.role_arn is None


def test_principal_identity_center_role_keys_on_role_and_session_name() -> None:
    record = load_record("send_command_sso_role_session.json")
    issuer_arn = identity(record)["sessionContext"]["sessionIssuer"]["arn"]
    session = identity(record)["arn"].rsplit("/", 1)[-1]

    found = principal(record)

    assert found.key == f"{issuer_arn}/{session}"
    assert found.role_arn == issuer_arn
    assert found.session_name == session


def test_principal_look_alike_sso_role_outside_the_reserved_path_is_an_ordinary_role() -> None:
    # Anyone can name a role AWSReservedSSO_*: outside aws-reserved/sso.amazonaws.com/ it is
    # keyed by role, so rotating session names cannot split its fan-out (issue 11.4).
    record = load_record("send_command_sso_role_session.json")
    issuer = identity(record)["sessionContext"]["sessionIssuer"]
    issuer["arn"] = "arn:aws:iam::111122223333:role/AWSReservedSSO_ReadOnly_0123456789abcdef"

    found = principal(record)

    assert found.key == issuer["arn"]


def test_principal_identity_center_role_by_path_alone() -> None:
    # Panther's sample: role under aws-reserved/sso.amazonaws.com/ whose name has no prefix.
    record = load_record("panther_send_command_three_instances.json")
    issuer_arn = identity(record)["sessionContext"]["sessionIssuer"]["arn"]
    assert "/aws-reserved/sso.amazonaws.com/" in issuer_arn
    assert not issuer_arn.rsplit("/", 1)[-1].startswith("AWSReservedSSO_")

    found = principal(record)

    assert found.key == f"{issuer_arn}/{identity(record)['arn'].rsplit('/', 1)[-1]}"


def test_principal_identity_center_roles_of_two_people_differ() -> None:
    first = principal(load_record("fanout_sso_two_users_first.json"))
    second = principal(load_record("fanout_sso_two_users_second.json"))

    assert first.role_arn == second.role_arn
    assert first.key != second.key


def test_principal_identity_center_role_session_keying_uses_session_arn() -> None:
    record = load_record("send_command_sso_role_session.json")

    assert principal(record, PrincipalKeying.SESSION).key == identity(record)["arn"]


def test_principal_root_keys_on_root_arn() -> None:
    record = load_record("send_command_root.json")

    found = principal(record)

    assert found.key == "arn:aws:iam::111122223333:root"
    assert found.type == "Root"
    assert found.role_arn is None
    assert not found.is_aws_service


def test_principal_root_without_arn_keys_on_account_root() -> None:
    record = load_record("send_command_root.json")
    del identity(record)["arn"]

    assert principal(record).key == f"arn:aws:iam::{identity(record)['accountId']}:root"


def test_principal_federated_user_keys_on_federated_arn() -> None:
    record = load_record("send_command_federated_user.json")

    found = principal(record)

    assert found.key == identity(record)["arn"]
    assert found.type == "FederatedUser"


def test_principal_aws_service_keys_on_invoking_service() -> None:
    record = load_record("send_command_aws_service_principal_three_instances.json")

    found = principal(record)

    assert found.key == f"service:{identity(record)['invokedBy']}"
    assert found.type == "AWSService"
    assert found.is_aws_service


def test_principal_identity_center_user_keys_on_store_and_user_id() -> None:
    record = load_record("send_command_identity_center_user.json")
    behalf = identity(record)["onBehalfOf"]

    found = principal(record)

    assert found.key == f"{behalf['identityStoreArn']}/user/{behalf['userId']}"
    assert found.type == "IdentityCenterUser"
    assert not found.is_aws_service


def test_principal_identity_center_users_of_one_store_differ() -> None:
    record = load_record("send_command_identity_center_user.json")
    other = load_record("send_command_identity_center_user.json")
    identity(other)["onBehalfOf"]["userId"] = "b5c9a3d2-4132-81e6-af7d-9a2e3c8b5da1"

    assert principal(record).key != principal(other).key


def test_principal_aws_account_keys_on_account_and_principal_id() -> None:
    record = load_record("send_command_success.json")
    record["userIdentity"] = {
        "type": "AWSAccount",
        "principalId": "AIDAJ45Q7YFFAREXAMPLE",
        "accountId": "444455556666",
    }

    found = principal(record)

    assert found.key == "account:444455556666:AIDAJ45Q7YFFAREXAMPLE"
    assert found.type == "AWSAccount"


@pytest.mark.parametrize(
    ("user_identity", "expected_key"),
    [
        (
            {
                "type": "WebIdentityUser",
                "principalId": "accounts.google.com:1234",
                "arn": "arn:aws:sts::111122223333:assumed-role/Web/1234",
            },
            "arn:aws:sts::111122223333:assumed-role/Web/1234",
        ),
        ({"type": "SAMLUser", "principalId": "SAMLISSUER:jane", "userName": "jane"}, None),
    ],
)
def test_principal_unknown_type_parses_and_keeps_its_type(
    user_identity: dict[str, Any], expected_key: str | None
) -> None:
    record = load_record("send_command_success.json")
    record["userIdentity"] = user_identity

    found = principal(record)

    assert found.type == user_identity["type"]
    assert found.key == (expected_key or f"principal:{user_identity['principalId']}")


def test_principal_identity_without_type_parses_as_unknown() -> None:
    record = load_record("send_command_success.json")
    del identity(record)["type"]

    found = principal(record)

    assert found.type == "Unknown"
    assert found.key == identity(record)["arn"]


def test_principal_state_manager_is_aws_service() -> None:
    record = load_record("send_command_state_manager_service.json")

    found = principal(record)

    assert found.is_aws_service
    assert found.type == "AssumedRole"


@pytest.mark.parametrize("evidence", ["invokedBy", "sourceIPAddress", "service_linked_role"])
def test_principal_state_manager_is_aws_service_on_any_one_sign(evidence: str) -> None:
    # Start from a human role call and add exactly one sign of an AWS service acting.
    record = load_record("send_command_success.json")
    if evidence == "invokedBy":
        identity(record)["invokedBy"] = "ssm.amazonaws.com"
    elif evidence == "sourceIPAddress":
        record["sourceIPAddress"] = "ssm.amazonaws.com"
    else:
        identity(record)["sessionContext"]["sessionIssuer"]["arn"] = (
            "arn:aws:iam::111122223333:role/aws-service-role/ssm.amazonaws.com/"
            "AWSServiceRoleForAmazonSSM"
        )

    assert principal(record).is_aws_service


@pytest.mark.parametrize(
    "source", ["ssm-guiconnect.amazonaws.com", "inspector2.amazonaws.com", "ssm.amazonaws.com"]
)
def test_principal_elastic_excluded_sources_are_aws_service(source: str) -> None:
    record = load_record("send_command_success.json")
    record["sourceIPAddress"] = source

    assert principal(record).is_aws_service


def test_principal_human_role_invoked_by_cloudformation_is_not_aws_service() -> None:
    record = load_record("send_command_success.json")
    identity(record)["invokedBy"] = "cloudformation.amazonaws.com"
    record["sourceIPAddress"] = "cloudformation.amazonaws.com"

    found = principal(record)

    assert not found.is_aws_service
    assert found.key == identity(record)["sessionContext"]["sessionIssuer"]["arn"]


def test_principal_human_role_is_not_aws_service() -> None:
    assert not principal(load_record("send_command_success.json")).is_aws_service
