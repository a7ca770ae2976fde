"""The read-only rule for decrypting parameter reads: in both templates, narrowed, switchable.

EventBridge delivers read-only management events (GetParameter*, DescribeParameters) only to a
rule in state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS; the normal rules (state ENABLED)
never see them, so without this rule AWS.SSM.SecureStringHarvesting would be silent.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ssm_detect.ssm_event import PARAMETER_READS
from tests.conftest import ROOT

READ_ONLY_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags kept as {"!Tag": value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"!{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tagged)


def template(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((ROOT / name).read_text(), Loader=_CfnLoader)  # noqa: S506
    return loaded


def rules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in doc["Resources"].items()
        if resource["Type"] == "AWS::Events::Rule"
    }


DETECTOR = template("template.yaml")
FORWARDER = template("templates/member-forwarder.yaml")
READ_RULES = [
    ("template.yaml", DETECTOR, "DefaultBusSecretReadRule"),
    ("template.yaml", DETECTOR, "CustomBusSecretReadRule"),
    ("member-forwarder.yaml", FORWARDER, "ForwardSecretReadRule"),
]


@pytest.mark.parametrize(("file", "doc", "name"), READ_RULES, ids=[r[2] for r in READ_RULES])
def test_secret_read_rule_is_read_only_and_narrowed(
    file: str, doc: dict[str, Any], name: str
) -> None:
    rule = rules(doc)[name]["Properties"]
    detail = rule["EventPattern"]["detail"]

    assert rule["State"] == READ_ONLY_STATE, file
    assert detail["eventSource"] == ["ssm.amazonaws.com"]
    decrypting, enumeration = detail["$or"]
    assert decrypting == {
        "eventName": list(PARAMETER_READS),
        "requestParameters": {"withDecryption": [True]},
    }
    assert enumeration == {"eventName": ["DescribeParameters"]}


def test_secret_read_rules_are_behind_a_parameter_that_defaults_on() -> None:
    assert DETECTOR["Parameters"]["DecryptedParameterReadsRule"]["Default"] == "true"
    assert FORWARDER["Parameters"]["ForwardDecryptedParameterReads"]["Default"] == "true"
    conditions = {name: rules(doc)[name].get("Condition") for _, doc, name in READ_RULES}
    assert conditions == {
        "DefaultBusSecretReadRule": "SecretReadsOn",
        "CustomBusSecretReadRule": "SecretReadsOnCustomBus",
        "ForwardSecretReadRule": "ForwardSecretReads",
    }


def test_secret_read_rules_only_rules_that_see_read_only_events() -> None:
    """Every other rule stays ENABLED: read-only events are for the narrowed rules alone."""
    for doc in (DETECTOR, FORWARDER):
        for name, rule in rules(doc).items():
            if name not in {r[2] for r in READ_RULES}:
                assert rule["Properties"]["State"] == "ENABLED", name


def test_secret_read_rules_targets_dead_letters_are_allowed_by_the_queue_policy() -> None:
    for doc, names in (
        (DETECTOR, ["DefaultBusSecretReadRule", "CustomBusSecretReadRule"]),
        (FORWARDER, ["ForwardSecretReadRule"]),
    ):
        policy = doc["Resources"]["UndeliveredEventsQueuePolicy"]["Properties"]["PolicyDocument"]
        allowed = str(policy["Statement"][0]["Condition"])
        for name in names:
            assert f"{name}.Arn" in allowed, name
