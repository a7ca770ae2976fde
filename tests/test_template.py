"""What template.yaml deploys, read as data (issue 15): the properties that keep the detector
running and its record intact. `make validate` lints the same file (cfn-lint, checkov)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssm_detect import wiring
from ssm_detect.heartbeat import HEARTBEAT_PARAMETER
from ssm_detect.settings import Settings
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


# --- deploy-time validation (point 5) ----------------------------------------------------------

JSON_PARAMETERS = [
    "AllowlistJson",
    "AutomationPrincipalsJson",
    "SeverityOverridesJson",
    "SuppressionOverridesJson",
    "TrustedAccountsJson",
    "KnownOutputBucketsJson",
    "ActivationRolesJson",
]
VALID = {
    "AllowlistJson": [
        "{}",
        '{"AWS.SSM.SendCommand": {"principals": ["arn:aws:iam::*:role/PatchAutomation"],'
        ' "documents": ["AWS-RunPatchBaseline"]}}',
        '{"*": {"principals": ["arn:aws:iam::*:role/PatchAutomation"]}, "AWS.SSM.SendCommand":'
        ' {"documents": ["AWS-RunPatchBaseline", "AWS-ConfigureAWSPackage"]}}',
    ],
    "AutomationPrincipalsJson": ["[]", '["arn:aws:iam::*:role/PatchAutomation"]'],
    "SeverityOverridesJson": [
        "{}",
        '{"AWS.SSM.SendCommand": "MEDIUM"}',
        '{"AWS.SSM.RareCommandDocumentCreator": "informational"}',
    ],
    "SuppressionOverridesJson": ["{}", '{"AWS.SSM.SendCommand": 240}'],
    "TrustedAccountsJson": ["[]", '["111122223333", "444455556666"]'],
    "KnownOutputBucketsJson": ["[]", '["org-ssm-output-*"]'],
    "ActivationRolesJson": [
        "[]",
        '["SSMServiceRole"]',
        '["SSMServiceRole", "arn:aws:iam::*:role/HybridNodes*"]',
        '["*Hybrid*"]',
    ],
}
INVALID = {
    "AllowlistJson": [
        '{"*": {"documents": ["AWS-RunShellScript"]',
        '{"*": {"principals": "arn:aws:iam::*:role/Patch"}}',
        '{"*": {"principal": ["*"]}}',
        "[]",
    ],
    "AutomationPrincipalsJson": ['"arn:aws:iam::*:role/Patch"', "[arn]", "{}"],
    "SeverityOverridesJson": ['{"AWS.SSM.SendCommand": "HIHG"}', '{"a": 1}'],
    "SuppressionOverridesJson": ['{"AWS.SSM.SendCommand": "ten"}', '{"a": -1}', '{"a": 01}'],
    "TrustedAccountsJson": ['"111122223333"', "[111122223333]", "{}"],
    "KnownOutputBucketsJson": ['"bucket"', "[bucket]"],
    # a role name where a list belongs; a pattern that allows every role; an empty pattern
    "ActivationRolesJson": ['"SSMServiceRole"', '["*"]', '["SSMServiceRole", "?*"]', '[""]', "{}"],
}


def _environment_variable(template: dict[str, object], parameter: str) -> str:
    variables = cfn.properties(template, "DetectorFunction")["Environment"]["Variables"]
    (name,) = [k for k, v in variables.items() if v == {"Ref": parameter}]
    return str(name)


def _pattern(template: dict[str, object], parameter: str) -> re.Pattern[str]:
    return re.compile(template["Parameters"][parameter]["AllowedPattern"])  # type: ignore[index]


@pytest.mark.parametrize("parameter", JSON_PARAMETERS)
def test_template_json_parameters_are_checked_before_deploying(
    template: dict[str, object], parameter: str
) -> None:
    pattern = _pattern(template, parameter)
    variable = _environment_variable(template, parameter)
    assert pattern.fullmatch(template["Parameters"][parameter]["Default"])  # type: ignore[index]
    for value in VALID[parameter]:
        assert pattern.fullmatch(value), value
        assert Settings.from_env_failsafe({variable: value})[1] == []
    for value in INVALID[parameter]:
        assert not pattern.fullmatch(value), value


@pytest.mark.parametrize("parameter", JSON_PARAMETERS)
def test_template_every_value_the_pattern_admits_is_a_valid_setting(
    template: dict[str, object], parameter: str
) -> None:
    """The pattern is no looser than the parser: whatever CloudFormation lets through, the
    function accepts (so a deploy-time pass means a run-time pass)."""
    pattern = _pattern(template, parameter)
    variable = _environment_variable(template, parameter)

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.from_regex(pattern, fullmatch=True))
    def parses(value: str) -> None:
        Settings.from_env({variable: value})

    parses()


def _evaluate(expression: object, parameters: dict[str, str]) -> object:
    """CloudFormation's rule functions, enough for this template's Rules."""
    if isinstance(expression, dict):
        ((name, argument),) = expression.items()
        if name == "Ref":
            return parameters[argument]
        values = [_evaluate(a, parameters) for a in argument]
        functions = {
            "Fn::Contains": lambda v: v[1] in v[0],
            "Fn::Equals": lambda v: v[0] == v[1],
            "Fn::Not": lambda v: not v[0],
            "Fn::And": all,
            "Fn::Or": any,
        }
        return functions[name](values)
    return expression


def refused_by_rules(template: dict[str, object], **given_parameters: str) -> list[str]:
    parameters = {n: str(p.get("Default", "")) for n, p in template["Parameters"].items()}  # type: ignore[attr-defined]
    parameters.update(given_parameters)
    refused = []
    for name, rule in template["Rules"].items():  # type: ignore[attr-defined]
        if not _evaluate(rule.get("RuleCondition", True), parameters):
            continue
        if not all(_evaluate(a["Assert"], parameters) for a in rule["Assertions"]):
            refused.append(name)
    return refused


def test_template_defaults_pass_the_rules(template: dict[str, object]) -> None:
    assert refused_by_rules(template) == []


@pytest.mark.parametrize(
    ("parameters", "refused"),
    [
        ({"SlackWorkspaceId": "T012ABCDEF"}, ["SlackNeedsBothIds"]),
        ({"SlackChannelId": "C0123ABCD"}, ["SlackNeedsBothIds"]),
        ({"SlackWorkspaceId": "T012ABCDEF", "SlackChannelId": "C0123ABCD"}, []),
        ({"EventBusName": "security"}, ["CustomBusNeedsOrganization"]),
        ({"EventBusName": "default"}, []),
        ({"OrganizationId": "o-a1b2c3d4e5"}, []),
        ({"EventBusName": "security", "OrganizationId": "o-a1b2c3d4e5"}, []),
    ],
)
def test_template_rules_refuse_combinations_that_cannot_work(
    template: dict[str, object], parameters: dict[str, str], refused: list[str]
) -> None:
    assert refused_by_rules(template, **parameters) == refused


def test_template_no_alarm_subscriber_is_stated_in_the_outputs(
    template: dict[str, object],
) -> None:
    output = template["Outputs"]["WarningAlarmsReachNoOne"]  # type: ignore[index]
    condition = template["Conditions"][output["Condition"]]  # type: ignore[index]
    assert {"Fn::Not": [{"Condition": "HasAlarmEmail"}]} in condition["Fn::And"]
    assert {"Fn::Not": [{"Condition": "HasSlack"}]} in condition["Fn::And"]


def test_template_bad_settings_alarm_reaches_the_alarm_topic(template: dict[str, object]) -> None:
    alarm = cfn.properties(template, "BadSettingsAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SsmDetect", "BadSettings")
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


# --- heartbeats and silence (point 1) ---------------------------------------------------------


@pytest.fixture(scope="module")
def forwarder() -> dict[str, object]:
    return cfn.load(cfn.FORWARDER)


def _heartbeat_pattern_name(rule: dict[str, object]) -> str:
    pattern = rule["EventPattern"]  # type: ignore[index]
    assert pattern["source"] == ["aws.ssm"]  # type: ignore[index]
    assert pattern["detail"]["eventName"] == ["PutParameter"]  # type: ignore[index]
    (name,) = pattern["detail"]["requestParameters"]["name"]  # type: ignore[index]
    return str(name)


def test_template_heartbeats_are_written_and_matched_on_the_same_parameter(
    template: dict[str, object], forwarder: dict[str, object]
) -> None:
    for doc, rules in (
        (template, ["DefaultBusHeartbeatRule", "CustomBusHeartbeatRule"]),
        (forwarder, ["HeartbeatForwardRule"]),
    ):
        assert cfn.properties(doc, "HeartbeatParameter")["Name"] == HEARTBEAT_PARAMETER
        target = cfn.properties(doc, "HeartbeatSchedule")["Target"]
        assert target["Arn"]["Fn::Sub"].endswith(":scheduler:::aws-sdk:ssm:putParameter")
        assert '"Name": "${HeartbeatParameter}"' in target["Input"]["Fn::Sub"]
        for rule in rules:
            assert _heartbeat_pattern_name(cfn.properties(doc, rule)) == HEARTBEAT_PARAMETER


def test_template_member_heartbeat_goes_through_the_forwarder_role_to_the_security_bus(
    forwarder: dict[str, object],
) -> None:
    (target,) = cfn.properties(forwarder, "HeartbeatForwardRule")["Targets"]
    assert target["Arn"] == {"Ref": "SecurityEventBusArn"}
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwarderRole", "Arn"]}
    assert "DeadLetterConfig" in target


def test_template_heartbeat_rules_dead_letter_into_a_queue_that_accepts_them(
    template: dict[str, object], forwarder: dict[str, object]
) -> None:
    central = str(cfn.properties(template, "UndeliveredEventsQueuePolicy"))
    for rule in ("DefaultBusHeartbeatRule", "CustomBusHeartbeatRule"):
        assert f"'{rule}', 'Arn'" in central
    member = str(cfn.properties(forwarder, "UndeliveredEventsQueuePolicy"))
    assert "'HeartbeatForwardRule', 'Arn'" in member


def test_template_silence_check_is_scheduled_and_alarmed(template: dict[str, object]) -> None:
    check = cfn.properties(template, "SilenceCheckRule")
    assert check["ScheduleExpression"].startswith("rate(")
    assert check["Targets"][0]["Arn"] == {"Fn::GetAtt": ["DetectorFunction", "Arn"]}
    alarm = cfn.properties(template, "SilentSourcesAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SsmDetect", "SilentSources")
    assert alarm["TreatMissingData"] == "breaching"  # no check at all is silence too
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    variables = cfn.properties(template, "DetectorFunction")["Environment"]["Variables"]
    assert variables["SILENCE_LIMIT_MINUTES"] == {"Ref": "SilenceLimitMinutes"}


def test_template_member_failures_reach_the_central_alarm_topic(
    template: dict[str, object], forwarder: dict[str, object]
) -> None:
    alarms = cfn.of_type(forwarder, "AWS::CloudWatch::Alarm")
    metrics = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()
    }
    assert ("AWS/Events", "FailedInvocations") in metrics
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metrics
    relay = cfn.properties(forwarder, "AlarmForwardRule")
    assert relay["EventPattern"]["source"] == ["aws.cloudwatch"]
    assert sorted(r["Fn::GetAtt"][0] for r in relay["EventPattern"]["resources"]) == sorted(alarms)
    assert relay["Targets"][0]["Arn"] == {"Ref": "SecurityEventBusArn"}
    central = cfn.properties(template, "MemberAlarmsRule")
    ((prefix_match,),) = [central["EventPattern"]["detail"]["alarmName"]]
    assert all(
        a["Properties"]["AlarmName"].startswith(prefix_match["prefix"]) for a in alarms.values()
    )
    assert central["Targets"][0]["Arn"] == {"Ref": "AlarmTopic"}


# --- topic policies (point 4) -----------------------------------------------------------------


def _topic_statements(template: dict[str, object], policy: str) -> dict[str, dict[str, object]]:
    document = cfn.properties(template, policy)["PolicyDocument"]
    return {s["Sid"]: s for s in cfn.statements(document)}


def test_template_findings_are_published_only_by_the_detector(template: dict[str, object]) -> None:
    statements = _topic_statements(template, "FindingsTopicPolicy")
    publish = statements["PublishOnlyByTheDetector"]
    assert (publish["Effect"], publish["Action"]) == ("Deny", "sns:Publish")
    assert publish["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["DetectorRole", "Arn"]}}
    }
    assert statements["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert statements["SubscribeOnlyFromThisAccount"]["Effect"] == "Deny"


def test_template_alarms_are_published_only_by_cloudwatch_and_eventbridge(
    template: dict[str, object],
) -> None:
    statements = _topic_statements(template, "AlarmTopicPolicy")
    allowed = {
        s["Principal"]["Service"]  # type: ignore[index]
        for s in statements.values()
        if s["Effect"] == "Allow"
    }
    assert allowed == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    deny = statements["PublishOnlyByAwsServices"]
    assert deny["Condition"] == {"Bool": {"aws:PrincipalIsAWSService": "false"}}
    assert "DenyInsecureTransport" in statements


# --- the organisation bus (point 4) -----------------------------------------------------------


def _condition_value(template: dict[str, object], name: str, parameters: dict[str, str]) -> bool:
    """A template condition under the given parameters (defaults otherwise)."""
    values = {n: str(p.get("Default", "")) for n, p in template["Parameters"].items()}  # type: ignore[attr-defined]
    values.update(parameters)

    def evaluate(expression: object) -> object:
        if isinstance(expression, dict):
            ((function, argument),) = expression.items()
            if function == "Condition":
                return evaluate(template["Conditions"][argument])  # type: ignore[index]
            if function == "Ref":
                return values[argument]
            items = [evaluate(a) for a in argument]
            return {
                "Fn::Equals": lambda v: v[0] == v[1],
                "Fn::Not": lambda v: not v[0],
                "Fn::And": all,
                "Fn::Or": any,
            }[function](items)
        return expression

    return bool(evaluate(template["Conditions"][name]))  # type: ignore[index]


@pytest.mark.parametrize(
    ("parameters", "custom_bus"),
    [
        ({}, False),  # single account: no bus to create
        ({"OrganizationId": "o-a1b2c3d4e5"}, True),  # the dedicated bus by default
        ({"OrganizationId": "o-a1b2c3d4e5", "EventBusName": "security"}, True),
        ({"OrganizationId": "o-a1b2c3d4e5", "EventBusName": "default"}, False),
    ],
)
def test_template_an_organisation_gets_a_dedicated_bus_unless_told_otherwise(
    template: dict[str, object], parameters: dict[str, str], custom_bus: bool
) -> None:
    assert _condition_value(template, "UseCustomBus", parameters) is custom_bus


def test_template_bus_policy_admits_only_the_forwarders_events(template: dict[str, object]) -> None:
    policy = cfn.properties(template, "OrganizationBusPolicy")
    condition = policy["Statement"]["Condition"]["StringEquals"]
    assert condition["aws:PrincipalOrgID"] == {"Ref": "OrganizationId"}
    assert sorted(condition["events:source"]) == ["aws.cloudwatch", "aws.ssm"]
    assert sorted(condition["events:detail-type"]) == [
        "AWS API Call via CloudTrail",
        "CloudWatch Alarm State Change",
    ]
    assert policy["Statement"]["Action"] == "events:PutEvents"


def test_template_bus_policy_statement_id_fits_any_stack_name(template: dict[str, object]) -> None:
    text, variables = cfn.properties(template, "OrganizationBusPolicy")["StatementId"]["Fn::Sub"]
    assert "AWS::StackName" not in text
    uuid_part = "a1b2c3d4"  # first group of the stack id's UUID, what StackUid selects
    assert "AWS::StackId" in str(variables["StackUid"])
    statement_id = text.replace("${StackUid}", uuid_part)
    assert len(statement_id) <= 64
    assert re.fullmatch(r"[A-Za-z0-9_-]+", statement_id)


def test_template_code_signing_is_optional_and_enforced_when_set(
    template: dict[str, object],
) -> None:
    function = cfn.properties(template, "DetectorFunction")
    assert function["CodeSigningConfigArn"]["Fn::If"][0] == "HasCodeSigning"
    config = cfn.resource(template, "DetectorCodeSigning")
    assert config["Condition"] == "HasCodeSigning"
    assert config["Properties"]["CodeSigningPolicies"]["UntrustedArtifactOnDeployment"] == "Enforce"
    assert not _condition_value(template, "HasCodeSigning", {})


def test_template_redaction_parameter_reaches_the_email_and_slack_renderer(
    template: dict[str, object], aws: None
) -> None:
    """Issue 14.2: the redaction switch is a deploy-time choice, not only an environment edit."""
    parameter = template["Parameters"]["RedactContentInNotifications"]  # type: ignore[index]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["true", "false"])
    name = _environment_variable(template, "RedactContentInNotifications")
    for value, redacts in (("true", True), ("false", False)):
        env = {
            "FINDINGS_TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:t",
            "STATE_TABLE_NAME": "state",
            name: value,
        }
        runtime = wiring.lambda_runtime(env, None, "111122223333")  # type: ignore[arg-type]
        (sns,) = runtime.dispatcher.notifiers
        assert sns._options.redact_content is redacts  # type: ignore[attr-defined]
