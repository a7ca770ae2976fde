"""What template.yaml deploys, read as data (issue 15): the properties that keep the detector
running and its record intact. `make validate` lints the same file (cfn-lint, checkov)."""

from __future__ import annotations

import pytest

from ssm_detect import wiring
from tests import cfn


@pytest.fixture(scope="module")
def template() -> dict[str, object]:
    return cfn.load()


def function_timeout(template: dict[str, object]) -> int:
    return int(cfn.properties(template, "DetectorFunction")["Timeout"])  # type: ignore[arg-type]


def test_template_one_stalled_aws_call_cannot_use_up_the_invocation(
    template: dict[str, object],
) -> None:
    """Every attempt of one call stalling to its timeouts, with every backoff, still leaves
    the invocation time to fail cleanly (metrics flushed) so Lambda retries it."""
    timeout = function_timeout(template)
    assert wiring.worst_case_call_seconds() <= 0.6 * timeout
    # one stalled attempt is a small part of the budget: the retries happen inside it
    stalled_attempt = wiring.CONNECT_TIMEOUT_SECONDS + wiring.READ_TIMEOUT_SECONDS
    assert stalled_attempt * 10 <= timeout


def test_template_every_client_the_lambda_creates_has_the_timeouts(aws: None) -> None:
    clients = wiring.AwsClients()
    for client in (clients.dynamodb_client(), clients.sns_client(), clients.securityhub_client()):
        config = client.meta.config
        assert config.connect_timeout == wiring.CONNECT_TIMEOUT_SECONDS
        assert config.read_timeout == wiring.READ_TIMEOUT_SECONDS
        assert config.retries == {"mode": "standard", "total_max_attempts": 1 + wiring.MAX_RETRIES}


def test_template_state_table_survives_deletion_by_stack_and_by_hand(
    template: dict[str, object],
) -> None:
    table = cfn.resource(template, "StateTable")
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True


def test_template_log_group_is_kept_and_a_new_stack_of_the_same_name_gets_its_own(
    template: dict[str, object],
) -> None:
    group = cfn.resource(template, "FunctionLogGroup")
    assert group["DeletionPolicy"] == "Retain"
    assert group["UpdateReplacePolicy"] == "Retain"
    name, variables = group["Properties"]["LogGroupName"]["Fn::Sub"]
    assert name.endswith("-${StackUid}")
    # the unique part of the stack id (arn:...:stack/NAME/UUID), new for every created stack
    assert "AWS::StackId" in str(variables["StackUid"])
    # the key policy lets CloudWatch Logs use the key for exactly that group
    key_policy = cfn.properties(template, "StackKey")["KeyPolicy"]
    (logs,) = [s for s in cfn.statements(key_policy) if "logs" in str(s["Principal"])]
    context, context_vars = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"][
        "Fn::Sub"
    ]
    assert context.endswith(f":log-group:{name}")
    assert context_vars == variables
