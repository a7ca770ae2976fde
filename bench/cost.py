"""Cost per million events the function receives, from the measured figures.

"Events" are what the EventBridge rule delivers (successful or failed SendCommand and
CreateDocument): per-event averages come from the corpus's stream of those records, run through
the real handler (AWS calls and DynamoDB write units from bench/calls.py, warm duration from
bench/handler_child.py). Prices: us-east-1, list prices, no free tier, no Savings Plans.
"""

from __future__ import annotations

from typing import Any

PRICES = {
    "lambda_request": {
        "usd": 0.20 / 1e6,
        "unit": "request",
        "source": "aws.amazon.com/lambda/pricing ($0.20 per 1M requests)",
    },
    "lambda_arm64_gb_second": {
        "usd": 0.0000133334,
        "unit": "GB-second (arm64)",
        "source": "aws.amazon.com/lambda/pricing, Arm price, first 6 billion GB-s/month",
    },
    "dynamodb_write_request_unit": {
        "usd": 0.625 / 1e6,
        "unit": "write request unit (on-demand, standard table class)",
        "source": "aws.amazon.com/dynamodb/pricing/on-demand ($0.625 per 1M WRU since the "
        "November 2024 price cut; a WRU writes up to 1 KB; failed conditional writes are billed)",
    },
    "sns_publish": {
        "usd": 0.50 / 1e6,
        "unit": "publish (standard topic, per 64 KB chunk)",
        "source": "aws.amazon.com/sns/pricing ($0.50 per 1M requests)",
    },
    "sns_email_delivery": {
        "usd": 2.00 / 1e5,
        "unit": "email notification",
        "source": "aws.amazon.com/sns/pricing ($2.00 per 100,000 email notifications)",
    },
    "sns_https_delivery": {
        "usd": 0.60 / 1e6,
        "unit": "HTTP/S notification (AWS Chatbot to Slack)",
        "source": "aws.amazon.com/sns/pricing ($0.60 per 1M HTTP/S notifications)",
    },
    "securityhub_finding_ingestion": {
        "usd": 0.00003,
        "unit": "finding ingestion event (an import of a new or updated finding)",
        "source": "aws.amazon.com/security-hub/pricing, Security Hub CSPM ($0.00003 per event "
        "after 10,000 free per account, region and month)",
    },
}
MEMORY_GB = 256 / 1024
EVENTS = 1_000_000


def estimate(results: dict[str, Any]) -> dict[str, Any]:
    stream = results["calls"].get("stream") or {}
    duration = results["latency"]["stream"]
    per_event = stream.get("events") or 0
    if not per_event or not duration.get("events"):
        return {"basis": "no corpus stream measured", "items": [], "total_usd": 0.0}
    n = stream["events"]
    billed_ms = duration["billed_ms_mean"]
    wru = stream["write_units"] / n
    publishes = stream["sns"] / n
    ingested = stream["findings_imported"] / n
    items = [
        ("Lambda requests", EVENTS, "lambda_request"),
        (
            f"Lambda duration: {billed_ms:.1f} ms billed mean x 256 MB",
            EVENTS * billed_ms / 1000 * MEMORY_GB,
            "lambda_arm64_gb_second",
        ),
        (f"DynamoDB writes: {wru:.2f} WRU per event", EVENTS * wru, "dynamodb_write_request_unit"),
        (f"SNS publishes: {publishes:.3f} per event", EVENTS * publishes, "sns_publish"),
        (
            "SNS deliveries: 1 email subscription per publish",
            EVENTS * publishes,
            "sns_email_delivery",
        ),
        (
            "SNS deliveries: 1 Chatbot (HTTPS) subscription per publish",
            EVENTS * publishes,
            "sns_https_delivery",
        ),
        (
            f"Security Hub: {ingested:.3f} findings imported per event",
            EVENTS * ingested,
            "securityhub_finding_ingestion",
        ),
    ]
    rows = [
        {
            "what": what,
            "quantity": round(quantity, 1),
            "unit": PRICES[price]["unit"],
            "usd": round(quantity * float(PRICES[price]["usd"]), 2),
        }
        for what, quantity, price in items
    ]
    return {
        "basis": f"the corpus's {n} SendCommand/CreateDocument events, warm duration against "
        f"{results['latency']['dynamodb'].split(' (')[0]}",
        "duration_note": "measured on this machine, where the handler has a full core; a 256 MB "
        "function gets about 0.15 vCPU (Lambda allocates CPU in proportion to memory), so the "
        "CPU part of the duration will be longer there",
        "items": rows,
        "total_usd": round(sum(r["usd"] for r in rows), 2),
        "prices": PRICES,
        "not_included": "CloudWatch Logs ingestion of the finding log lines and EMF metrics, "
        "custom metrics, X-Ray traces, EventBridge (AWS service events on the default bus are "
        "free), data transfer",
    }
