"""The detector's role allows exactly the AWS calls its code makes (issue 15, point 3).

Two readings of "the calls its code makes", and both must equal the policy:
- static: every module the Lambda entry point can import (deferred imports included) is read,
  and each `<...client>.<operation>(...)` call that names an operation of DynamoDB, SNS or
  Security Hub is one IAM action;
- dynamic: every event file goes through the real handler (moto behind it, SNS and Security
  Hub on), and botocore's `before-call` hook records each operation actually sent.
The policy side is DetectorRole in template.yaml. A call added without its permission, or a
permission kept after its call went, fails here.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name

from ssm_detect.ingest import BadEvent
from ssm_detect.processing import process_payload
from ssm_detect.wiring import AwsClients, lambda_runtime
from tests import cfn
from tests.conftest import EVENTS, REGION, TABLE

SRC = cfn.ROOT / "src"
ENTRY_POINT = "handler.app"
# The services the function's code calls itself. KMS and SQS are used on its behalf (key
# through DynamoDB, SNS and SQS; the on-failure destination by Lambda), checked below.
CODE_SERVICES = {"dynamodb": "dynamodb", "sns": "sns", "securityhub": "securityhub"}


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def lambda_modules() -> dict[str, Path]:
    """The project's modules the entry point reaches, following every import in every body."""
    found: dict[str, Path] = {}
    pending = [ENTRY_POINT]
    while pending:
        name = pending.pop()
        path = _module_file(name)
        if path is None or name in found:
            continue
        found[name] = path
        pending.extend(_imports(path, name))
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = name.split(".")
        pending.extend(".".join(parts[:n]) for n in range(1, len(parts)))
    return found


# IAM authorises a transaction by the actions inside it: "Permissions for Put, Update, Delete,
# and Get actions are governed by the permissions used for the underlying PutItem, UpdateItem,
# DeleteItem, and GetItem operations" (DynamoDB developer guide, "Using IAM with DynamoDB
# transactions"). The ledger's TransactWriteItems holds only Update actions.
_AUTHORISED_AS = {"dynamodb:TransactWriteItems": "dynamodb:UpdateItem"}


def iam_action(call: str) -> str:
    return _AUTHORISED_AS.get(call, call)


def _operations(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def code_actions() -> set[str]:
    """IAM actions for the `...client.<operation>(...)` calls in the Lambda's modules."""
    operations = {service: _operations(service) for service in CODE_SERVICES}
    actions = set()
    for path in lambda_modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            if not receiver.lower().endswith("client"):
                continue
            for service, ops in operations.items():
                if node.func.attr in ops:
                    actions.add(iam_action(f"{CODE_SERVICES[service]}:{ops[node.func.attr]}"))
    return actions


def role_statements() -> list[dict[str, Any]]:
    role = cfn.properties(cfn.load(), "DetectorRole")
    found = []
    for entry in role["Policies"]:
        # the conditional Security Hub policy is [condition, policy, AWS::NoValue]
        policy = entry["Fn::If"][1] if "Fn::If" in entry else entry
        found.extend(cfn.statements(policy["PolicyDocument"]))
    return found


def policy_actions(services: set[str]) -> set[str]:
    return {
        action
        for statement in role_statements()
        for action in cfn.as_list(statement["Action"])
        if action.split(":")[0] in services
    }


def test_iam_the_lambda_modules_include_every_aws_adapter() -> None:
    """The import walk must reach the code that calls AWS, or the static reading proves
    nothing."""
    modules = lambda_modules()
    for adapter in (
        "ssm_detect.state.dynamodb",
        "ssm_detect.ledger.dynamodb",
        "ssm_detect.sinks.sns",
        "ssm_detect.sinks.securityhub",
    ):
        assert adapter in modules
    assert "ssm_detect.cli" not in modules  # operator tooling runs with the operator's rights


def test_iam_role_allows_exactly_the_calls_in_the_code() -> None:
    in_code = code_actions()
    assert "dynamodb:UpdateItem" in in_code
    assert policy_actions(set(CODE_SERVICES.values())) == in_code


def test_iam_role_allows_no_read_delete_or_put_on_the_table() -> None:
    """The state blocks, the ledger and heartbeats are single conditional UpdateItems; the
    silence check reads its 16 items with one BatchGetItem. No GetItem/PutItem/DeleteItem,
    no Query or Scan."""
    assert policy_actions({"dynamodb"}) == {"dynamodb:UpdateItem", "dynamodb:BatchGetItem"}


class _Quiet:
    def bad_event(self, bad: BadEvent) -> None:
        del bad

    def event_context(self, event_id: str) -> None:
        del event_id


class _Recorder:
    def __init__(self) -> None:
        self.actions: set[str] = set()

    def attach(self, client: Any) -> Any:
        prefix = client.meta.service_model.signing_name
        client.meta.events.register(
            "before-call.*.*",
            lambda model, **_: self.actions.add(iam_action(f"{prefix}:{model.name}")),
        )
        return client


@pytest.fixture
def recorded(aws: None) -> set[str]:
    """Every event file through the real handler; the AWS operations it sent."""
    del aws
    from handler import app  # noqa: PLC0415

    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="findings")["TopicArn"]
    recorder = _Recorder()
    clients = AwsClients(
        dynamodb=recorder.attach(boto3.client("dynamodb", region_name=REGION)),
        sns=recorder.attach(boto3.client("sns", region_name=REGION)),
        securityhub=recorder.attach(boto3.client("securityhub", region_name=REGION)),
    )
    env = {
        "STATE_TABLE_NAME": TABLE,
        "FINDINGS_TOPIC_ARN": topic,
        "SECURITY_HUB_ENABLED": "true",
        "AWS_REGION": REGION,
    }
    runtime = lambda_runtime(env, app.logger, "111122223333", clients)
    for path in sorted(EVENTS.glob("*.json")):
        process_payload(
            json.loads(path.read_text()), runtime.pipeline, runtime.dispatcher, _Quiet()
        )
    return recorder.actions


def test_iam_every_call_the_handler_makes_on_the_event_corpus_is_allowed(
    recorded: set[str],
) -> None:
    # the corpus exercises state, ledger, SNS and Security Hub
    assert {"dynamodb:UpdateItem", "sns:Publish", "securityhub:BatchImportFindings"} <= recorded
    assert recorded <= policy_actions(set(CODE_SERVICES.values()))
    assert recorded <= code_actions()


def test_iam_each_code_statement_names_this_stacks_resource_not_a_wildcard() -> None:
    for statement in role_statements():
        for resource in cfn.as_list(statement["Resource"]):
            assert resource != "*", statement["Sid"]


def _encrypted_with_stack_key() -> dict[str, str]:
    """Resource name -> the service that holds its data under the stack key."""
    template = cfn.load()
    key = {"Fn::GetAtt": ["StackKey", "Arn"]}
    holders = {}
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        if (
            props.get("SSESpecification", {}).get("KMSMasterKeyId") == key
            or props.get("KmsMasterKeyId") == key
        ):
            holders[name] = res["Type"].split("::")[1].lower()
    return holders


def test_iam_key_use_is_decrypt_and_generate_data_key_through_the_services_only() -> None:
    (statement,) = [s for s in role_statements() if "kms:Decrypt" in cfn.as_list(s["Action"])]
    assert sorted(cfn.as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == {"Fn::GetAtt": ["StackKey", "Arn"]}
    via = statement["Condition"]["StringEquals"]["kms:ViaService"]
    services = {v["Fn::Sub"].split(".")[0] for v in via}
    # exactly the services of the key-encrypted resources the role writes to
    referenced = {
        holder_service
        for name, holder_service in _encrypted_with_stack_key().items()
        for s in role_statements()
        if s is not statement and name in str(s["Resource"])
    }
    assert referenced == {"dynamodb", "sns", "sqs"}
    assert services == referenced
    assert all(v["Fn::Sub"].endswith(".${AWS::Region}.${AWS::URLSuffix}") for v in via)


def test_iam_no_kms_encrypt_and_no_xray_anywhere_in_the_role() -> None:
    actions = {a for s in role_statements() for a in cfn.as_list(s["Action"])}
    assert "kms:Encrypt" not in actions
    assert not any(a.startswith("xray:") for a in actions)
    function = cfn.properties(cfn.load(), "DetectorFunction")
    assert function.get("Tracing", "PassThrough") == "PassThrough"
