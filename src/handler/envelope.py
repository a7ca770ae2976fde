"""Which payloads the Lambda path accepts: the EventBridge events template.yaml routes to it.

The function is invoked by its EventBridge rules, and they send exactly two kinds of event:
- CloudTrail's SSM calls (the detection rules, the read-only rule and the heartbeat rules):
  `source: aws.ssm`, `detail-type: AWS API Call via CloudTrail`, the record in `detail`. The
  heartbeat is one of these (a `PutParameter` on the heartbeat parameter);
- the silence check (`SilenceCheckRule`, a schedule): `source: aws.events`,
  `detail-type: Scheduled Event`.

Anything else reached the function some other way: a direct `lambda:Invoke` with a bare
CloudTrail record, a `{"Records": [...]}` file, a list, or an envelope with another source
(including a forged one). Such a payload could write state or forge findings, so it is refused
whole before anything is parsed or stored: an ERROR log line naming why (and the id, source
and detail-type it claimed), the `RefusedEvents` metric and its alarm, and no AWS call. It is
not retried either (refusing is not failing). `ssm-detect replay` does not come through here
and keeps reading bare records and CloudTrail's files.

This checks the shape only; that an envelope really came from EventBridge is for IAM: only
the rules may invoke the function (its resource policy), and the optional SCP denies
`lambda:InvokeFunction` on it to everyone (docs/deploy.md, "Protecting the deployment").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from ssm_detect.ingest import CLOUDTRAIL_DETAIL_TYPE, event_id_of
from ssm_detect.processing import Summary

SCHEDULED_DETAIL_TYPE = "Scheduled Event"
ACCEPTED = frozenset({("aws.ssm", CLOUDTRAIL_DETAIL_TYPE), ("aws.events", SCHEDULED_DETAIL_TYPE)})
"""(source, detail-type) of every event a rule of template.yaml sends the function."""
_SHOWN = 128
"""How much of a claimed source or detail-type a log line repeats (it is caller-controlled)."""


@dataclass(frozen=True)
class Refusal:
    reason: str
    event_id: str
    source: str | None
    detail_type: str | None


def refusal_of(payload: object) -> Refusal | None:
    """Why the Lambda path refuses this payload, or None when a rule could have sent it. An
    accepted envelope's `detail` is judged as before (a malformed one is a bad event, reported
    with its event id, not a refusal)."""
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        return Refusal(f"not an EventBridge event (JSON {kind})", "unknown", None, None)
    event_id = event_id_of(payload)
    source, detail_type = _shown(payload.get("source")), _shown(payload.get("detail-type"))
    if source is None and detail_type is None:
        what = "a CloudTrail file" if "Records" in payload else "a bare record"
        return Refusal(f"not an EventBridge event ({what})", event_id, None, None)
    if (source, detail_type) not in ACCEPTED:
        return Refusal("a source and detail-type no rule sends", event_id, source, detail_type)
    return None


def refuse(refusal: Refusal, logger: Logger, metrics: Metrics) -> dict[str, object]:
    """Report a refused payload; the result has the usual summary's shape, all zeros."""
    logger.error(
        "refused event: %s",
        refusal.reason,
        extra={
            "refused_event_id": refusal.event_id,
            "claimed_source": refusal.source,
            "claimed_detail_type": refusal.detail_type,
        },
    )
    metrics.add_metric(name="RefusedEvents", unit=MetricUnit.Count, value=1)
    return Summary().as_dict() | {"refused": refusal.reason}


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return "".join(c if c.isprintable() else "?" for c in text[:_SHOWN])


def as_eventbridge_event(record: dict[str, Any]) -> dict[str, Any]:
    """A bare CloudTrail record in the envelope EventBridge gives it (for local invocations of
    the real handler: `ssm-detect invoke` on a record taken from a trail file)."""
    return {
        "version": "0",
        "id": f"local-{event_id_of(record)}",
        "detail-type": CLOUDTRAIL_DETAIL_TYPE,
        "source": "aws.ssm",
        "account": record.get("recipientAccountId"),
        "time": record.get("eventTime"),
        "region": record.get("awsRegion"),
        "resources": [],
        "detail": record,
    }
