"""The EventBridge rules forward exactly the event names the code reads (CONTRACTS.md point 4).

A name the detections read that no rule forwards is a blind spot in production that no other
test would see (tests feed the handler directly); a name forwarded that nothing reads costs an
invocation per event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ssm_detect.event_names import DETECTED_EVENT_NAMES, EXECUTION_PATHS, SEND_AND_CREATE
from ssm_detect.execution_calls import _PARSERS
from ssm_detect.heartbeat import HEARTBEAT_PARAMETER
from ssm_detect.ingest import records_in, to_event
from ssm_detect.principal import PrincipalKeying
from ssm_detect.ssm_event import PARAMETER_READS
from tests.conftest import EVENTS, load_event

ROOT = Path(__file__).resolve().parent.parent


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads `!GetAtt x.y`, `!Ref x`, `!If [...]` as plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    del suffix
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def _ssm_rules(template: str) -> dict[str, dict[str, Any]]:
    """Every EventBridge rule of the template whose pattern selects SSM CloudTrail events for
    the detections (the heartbeat rules, which select one parameter's PutParameter and never
    reach the detections, are tests/test_heartbeat.py's and test_template.py's)."""
    document = yaml.load((ROOT / template).read_text(), Loader=_CloudFormationLoader)  # noqa: S506
    return {
        name: resource["Properties"]
        for name, resource in document["Resources"].items()
        if resource["Type"] == "AWS::Events::Rule"
        and "aws.ssm" in resource["Properties"].get("EventPattern", {}).get("source", [])
        and not _is_heartbeat_rule(resource["Properties"])
    }


def _is_heartbeat_rule(properties: dict[str, Any]) -> bool:
    detail = properties["EventPattern"].get("detail", {})
    names = detail.get("requestParameters", {}).get("name", [])
    return bool(names == [HEARTBEAT_PARAMETER])


def _forwarded(rules: dict[str, dict[str, Any]], bus: str | None = None) -> list[str]:
    """Every event name the bus's rules select, in `eventName` or in `$or` alternatives."""
    names: list[str] = []
    for properties in rules.values():
        if bus is None or str(properties.get("EventBusName")) == bus:
            detail = properties["EventPattern"]["detail"]
            for pattern in [detail, *detail.get("$or", [])]:
                names += pattern.get("eventName", [])
    return names


@pytest.mark.parametrize(
    ("template", "bus"),
    [
        ("template.yaml", "default"),
        ("template.yaml", "CustomEventBus"),
        ("templates/member-forwarder.yaml", None),
    ],
)
def test_each_bus_forwards_exactly_the_event_names_the_code_reads(
    template: str, bus: str | None
) -> None:
    forwarded = _forwarded(_ssm_rules(template), bus)
    assert sorted(forwarded) == sorted(DETECTED_EVENT_NAMES)
    assert len(forwarded) == len(set(forwarded)), "a name is forwarded twice"


def test_every_rule_pattern_is_an_ssm_cloudtrail_pattern() -> None:
    for template in ("template.yaml", "templates/member-forwarder.yaml"):
        for name, properties in _ssm_rules(template).items():
            pattern = properties["EventPattern"]
            assert pattern["detail-type"] == ["AWS API Call via CloudTrail"], name
            assert pattern["detail"]["eventSource"] == ["ssm.amazonaws.com"], name


def test_every_forwarded_name_has_a_call_model() -> None:
    """A forwarded call the models do not know reaches the detections as `call=None`."""
    sessions = {"StartSession", "CreateActivation", "DescribeParameters", *PARAMETER_READS}
    modelled = {"SendCommand", "CreateDocument", *_PARSERS, *sessions}
    assert set(DETECTED_EVENT_NAMES) <= modelled


def test_every_name_of_issue_12_has_an_event_file() -> None:
    seen = set()
    for path in EVENTS.glob("*.json"):
        for raw in records_in(load_event(path.name)):
            if not isinstance(raw, dict):
                continue
            event = to_event(raw, PrincipalKeying.ROLE)
            name = getattr(getattr(event, "record", None), "event_name", None)
            if name:
                seen.add(name)
    wanted = {*SEND_AND_CREATE, *EXECUTION_PATHS}
    assert wanted <= seen, wanted - seen
