"""A finding as one SNS publish with `MessageStructure="json"` (pure: no boto3, no clock).

The message carries three renderings, each chosen by SNS per subscription protocol:
- `default`: a short plain-text line (SNS requires this key; SQS, Lambda and any protocol
  without its own key receive it);
- `email`: a readable plain-text email: who, what, where, when, why it matters, what to do, links
  to the CloudTrail events and the Security Hub finding, and the document content last;
- `https`: the AWS Chatbot (Amazon Q Developer in chat applications) custom-notification JSON,
  stringified, since Chatbot subscribes to the topic over HTTPS. `textType` "client-markdown"
  means Chatbot renders it in the chat platform's markdown, Slack's mrkdwn for Slack.

Every attacker-controlled value goes through `render.escape` (Slack: inline code, entities,
mentions broken; email: controls made visible, URLs defanged) and is truncated.

Limits enforced:
- subject: printable ASCII, one line, at most 99 characters (SNS: "less than 100 characters");
- Chatbot `description` at most 3,000 characters (the text limit of the Slack section block it is
  shown in), `title` at most 250, `nextSteps` at most 8 entries, `keywords` at most 8;
- the message plus its attributes (names, data types and values) at most 262,144 bytes (256 KiB,
  SNS's limit, which includes message attributes); the subject is counted as well, to be safe.
  When the document content makes it larger, the email body is cut from its end (the content is
  its last section) with a note, then, if ever needed, the Chatbot description.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from itertools import accumulate
from typing import Any

from detections import all_detections
from detections.base import DetectionMetadata
from ssm_detect.findings import Finding, Resource, ResourceType, Severity
from ssm_detect.render.asff import cloudtrail_event_url, securityhub_finding_url
from ssm_detect.render.escape import (
    ELLIPSIS,
    as_text,
    ascii_line,
    email_block,
    email_line,
    one_line,
    slack_block,
    slack_code,
    slack_text,
    slack_token,
)

MAX_SNS_BYTES = 262_144
MAX_SUBJECT = 99
MAX_CHATBOT_TITLE = 250
MAX_CHATBOT_DESCRIPTION = 3000
MAX_NEXT_STEPS = 8
MAX_KEYWORDS = 8
MAX_RELATED_RESOURCES = 10
MAX_EVENT_LINKS = 20
MIN_EMAIL_BYTES = 4096
MIN_DESCRIPTION = 200
SLACK_CONTENT_EXCERPT = 600
EMAIL_WIDTH = 78
VALUE_LIMIT = 300
LIST_LIMIT = 4000
TRUNCATED_NOTE = "\n\n[Message truncated to fit the SNS size limit; see the finding for the rest.]"

_EMOJI = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.HIGH: ":rotating_light:",
    Severity.MEDIUM: ":warning:",
    Severity.LOW: ":large_blue_circle:",
    Severity.INFORMATIONAL: ":information_source:",
}
_API = {
    "AWS.SSM.SendCommand": "ssm:SendCommand",
    "AWS.SSM.DistributedCommand": "ssm:SendCommand",
    "AWS.SSM.RareCommandDocumentCreator": "ssm:CreateDocument",
}
# Context keys shown under "what", in this order, with their labels. Keys rendered elsewhere
# (who, where, links, content) are listed in _SHOWN_ELSEWHERE; any other key is shown under
# "other details", so a detection's new context never silently disappears.
_WHAT_FIELDS = (
    ("document_name", "Document"),
    ("document_version", "Doc version"),
    ("document_type", "Doc type"),
    ("document_format", "Doc format"),
    ("target_type", "Target type"),
    ("content_hidden", "Content hidden"),
    ("command_id", "Command id"),
    ("comment", "Comment"),
    ("instance_count", "Instance count"),
    ("targets", "Targets"),
    ("unknown_size_targets", "Open targets"),
    ("distinct_instances", "Distinct seen"),
    ("fanout_size", "Fan-out size"),
    ("threshold", "Threshold"),
    ("window_start", "Window start"),
    ("window_end", "Window end"),
    ("output_s3_bucket", "Output bucket"),
    ("tags", "Tags"),
    ("history_window_days", "History (days)"),
)
_SHOWN_ELSEWHERE = frozenset(
    {
        "instance_ids",
        "window_instance_ids",
        "contributing_event_ids",
        "source_ip",
        "user_agent",
        "content",
    }
)
_MAX_OTHER_DETAILS = 20
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class SnsMessage:
    """Arguments for `sns:Publish`: `Subject`, `Message`, `MessageStructure`, attributes."""

    subject: str
    message: str
    message_attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    message_structure: str = "json"

    @property
    def size(self) -> int:
        """Bytes counted against SNS's limit: message, attributes, and (to be safe) subject."""
        return _size(self.subject, self.message, self.message_attributes)


def format_sns(finding: Finding, *, console_region_links: bool = True) -> SnsMessage:
    """One SNS publish for a finding: short default text, email text and a Chatbot message.

    `console_region_links` puts the region in the console host name
    (`https://us-west-2.console.aws.amazon.com/...`); otherwise the global host is used.
    """
    attributes = {
        "severity": _string_attribute(finding.severity.value),
        "detection_id": _string_attribute(finding.detection_id),
        "account_id": _string_attribute(finding.account_id),
    }
    subject = ascii_line(
        f"[ssm-detect] {finding.severity.value}: {finding.title} ({finding.account_id})",
        MAX_SUBJECT,
    )
    links = _Links(finding, regional_host=console_region_links)
    default = render_default(finding, links)
    email = render_email(finding, console_region_links=console_region_links)
    description_limit = MAX_CHATBOT_DESCRIPTION
    while True:
        chatbot = render_chatbot(
            finding, console_region_links=console_region_links, description_limit=description_limit
        )
        message = _message(default, email, chatbot)
        size = _size(subject, message, attributes)
        if size <= MAX_SNS_BYTES:
            return SnsMessage(subject, message, attributes)
        overhead = _size(subject, _message(default, "", chatbot), attributes)
        budget = MAX_SNS_BYTES - overhead - _json_bytes(TRUNCATED_NOTE)
        if budget >= MIN_EMAIL_BYTES or description_limit <= MIN_DESCRIPTION:
            email = _json_prefix(email, max(budget, 0)) + TRUNCATED_NOTE
            message = _message(default, email, chatbot)
            if _size(subject, message, attributes) > MAX_SNS_BYTES:
                raise ValueError(f"SNS message for {finding.id} does not fit in {MAX_SNS_BYTES}")
            return SnsMessage(subject, message, attributes)
        # Only reachable if the fixed parts alone crowd the email out: shorten the description.
        description_limit //= 2


def render_default(finding: Finding, links: _Links | None = None) -> str:
    """The short plain-text message for protocols without their own rendering."""
    links = links or _Links(finding, regional_host=True)
    text = (
        f"ssm-detect {finding.severity.value}: {finding.title}. "
        f"Principal {email_line(finding.principal.key, 200)} in account "
        f"{email_line(finding.account_id, 20)}, region {email_line(finding.region, 20)}, "
        f"last seen {_when(finding.last_seen)} ({finding.count} occurrence(s)). "
        f"Finding {email_line(finding.id, 120)}."
    )
    if links.events:
        text += f" CloudTrail: {links.events[0][1]}"
    return text


def render_email(finding: Finding, *, console_region_links: bool = True) -> str:
    """The plain-text email body. Attacker-controlled values are made safe and bounded; the
    document content, if any, comes last and in full (the SNS size limit cuts it later)."""
    links = _Links(finding, regional_host=console_region_links)
    principal = finding.principal
    metadata = _metadata(finding.detection_id)
    reasons = "; ".join(finding.severity_reasons)
    lines = [
        one_line(finding.title, 200),
        "=" * min(len(one_line(finding.title, 200)), EMAIL_WIDTH),
        "",
        _kv("Severity", finding.severity.value + (f" ({reasons})" if reasons else ""), plain=True),
        _kv("Detection", finding.detection_id, plain=True),
        _kv("Finding id", finding.id),
        "",
        *_paragraph(email_line(_summary(finding, metadata), 2000)),
        "",
        "WHO",
        _kv("Principal", principal.key),
        _kv("Type", principal.type),
    ]
    lines += _optional_kv(
        ("Identity ARN", principal.arn if principal.arn != principal.key else None),
        ("Role", principal.role_arn if principal.role_arn != principal.key else None),
        ("Session name", principal.session_name),
        ("Access key", principal.access_key_id),
    )
    lines += [_kv("Source IP", finding.source_ip), _kv("User agent", finding.user_agent), ""]
    lines += ["WHAT", _kv("API call", _API.get(finding.detection_id, "-"), plain=True)]
    lines += [
        _kv(label, _display(key, finding.context[key]))
        for key, label in _WHAT_FIELDS
        if _present(finding.context.get(key))
    ]
    lines += _other_details(finding)
    lines += ["", "WHERE", _kv("Account", finding.account_id), _kv("Region", finding.region)]
    instances = _instance_ids(finding)
    if instances:
        shown = ", ".join(instances[:50])
        more = f" (+{len(instances) - 50} more)" if len(instances) > 50 else ""
        lines.append(_kv(f"Instances ({len(instances)})", shown + more, limit=LIST_LIMIT))
    lines += _optional_kv(
        *[("Document ARN", r.id) for r in _of_type(finding, ResourceType.SSM_DOCUMENT)]
    )
    lines += [
        "",
        "WHEN (UTC)",
        _kv("First seen", _when(finding.first_seen), plain=True),
        _kv("Last seen", _when(finding.last_seen), plain=True),
        _kv("Occurrences", str(finding.count), plain=True),
        "",
        "WHY IT MATTERS",
    ]
    lines += _paragraph(metadata.description if metadata else email_line(finding.description, 1000))
    lines += _attack_lines(finding, metadata)
    if metadata:
        lines += ["  Usual false positives:"]
        lines += [f"    - {fp}" for fp in metadata.false_positives]
    lines += ["", "WHAT TO DO", *_paragraph(finding.runbook or "-"), "", "LINKS"]
    lines += [
        f"  CloudTrail event {email_line(event_id, 80)} (open in account "
        f"{email_line(finding.account_id, 20)}):\n    {url}"
        for event_id, url in links.events
    ]
    if links.more_events:
        lines.append(_kv("More events", ", ".join(links.more_events), limit=LIST_LIMIT))
    lines.append(
        f"  Security Hub finding (in the account that imports findings):\n    {links.finding}"
    )
    lines += [f"  Reference: {reference}" for reference in finding.references]
    content = finding.context.get("content")
    if content:
        lines += [
            "",
            "DOCUMENT CONTENT (as CloudTrail recorded it: attacker-controlled, links defanged)",
            email_block(content),
        ]
    return "\n".join(lines) + "\n"


def render_chatbot(
    finding: Finding,
    *,
    console_region_links: bool = True,
    description_limit: int = MAX_CHATBOT_DESCRIPTION,
) -> dict[str, Any]:
    """The AWS Chatbot custom notification (schema version 1.0) as a dict."""
    links = _Links(finding, regional_host=console_region_links)
    metadata = _metadata(finding.detection_id)
    severity = finding.severity.value
    title = f"{_EMOJI[finding.severity]} [{severity}] {slack_text(finding.title, 200)}"
    next_steps = [slack_text(s, 300) for s in _SENTENCE_END.split(finding.runbook) if s.strip()]
    next_steps = next_steps[: MAX_NEXT_STEPS - 2]
    for event_id, url in links.events[:1]:
        next_steps.append(f"Open CloudTrail event {slack_code(event_id, 60)}: {url}")
    next_steps.append(f"Open the Security Hub finding: {links.finding}")
    keywords = [severity, finding.detection_id, finding.account_id, finding.region]
    keywords += [tag.technique for tag in finding.mitre]
    related = [slack_token(r.id, 256) for r in finding.resources[:MAX_RELATED_RESOURCES]]
    return {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": title[:MAX_CHATBOT_TITLE],
            "description": _slack_description(finding, metadata, description_limit),
            "nextSteps": next_steps[:MAX_NEXT_STEPS],
            "keywords": list(dict.fromkeys(slack_token(k, 64) for k in keywords))[:MAX_KEYWORDS],
        },
        "metadata": {
            "threadId": slack_token(finding.id, 256),
            "summary": slack_token(
                f"{severity} {finding.detection_id} in {finding.account_id}/{finding.region}", 200
            ),
            "eventType": slack_token(finding.detection_id, 128),
            "relatedResources": related,
        },
    }


def _slack_description(finding: Finding, metadata: DetectionMetadata | None, limit: int) -> str:
    principal = finding.principal
    reasons = "; ".join(finding.severity_reasons)
    lines = [
        f"*Severity:* {finding.severity.value}"
        + (f" ({slack_text(reasons, 300)})" if reasons else ""),
        f"*Detection:* {slack_code(finding.detection_id, 80)}",
        f"*Who:* {slack_code(principal.key)} ({slack_code(principal.type, 40)})",
    ]
    if principal.session_name:
        lines.append(f"*Session:* {slack_code(principal.session_name, 100)}")
    if principal.access_key_id:
        lines.append(f"*Access key:* {slack_code(principal.access_key_id, 40)}")
    lines += [
        f"*Source IP:* {slack_code(finding.source_ip, 60)}",
        f"*User agent:* {slack_code(finding.user_agent, 160)}",
        f"*API call:* {slack_code(_API.get(finding.detection_id, '-'), 40)}",
    ]
    for key, label in _WHAT_FIELDS:
        value = finding.context.get(key)
        if _present(value):
            lines.append(f"*{label}:* {slack_code(_display(key, value), 160)}")
    lines.append(
        f"*Where:* account {slack_code(finding.account_id, 20)}, "
        f"region {slack_code(finding.region, 20)}"
    )
    instances = _instance_ids(finding)
    if instances:
        shown = ", ".join(slack_code(i, 40) for i in instances[:5])
        more = f" and {len(instances) - 5} more" if len(instances) > 5 else ""
        lines.append(f"*Instances ({len(instances)}):* {shown}{more}")
    lines.append(
        f"*When:* {_when(finding.first_seen)} to {_when(finding.last_seen)} "
        f"({finding.count} occurrence(s))"
    )
    why = metadata.description if metadata else "See the finding."
    lines.append(f"*Why it matters:* {slack_text(why, 500)}")
    text = _fit_lines(lines, limit)
    content = finding.context.get("content")
    room = limit - len(text) - len("\n*Document content (excerpt):*\n```\n\n```")
    if content and room >= 100:
        excerpt = slack_block(content, min(room, SLACK_CONTENT_EXCERPT))
        text += f"\n*Document content (excerpt):*\n```\n{excerpt}\n```"
    return text


def _fit_lines(lines: list[str], limit: int) -> str:
    """Whole lines, joined, at most `limit` characters; a cut ends with a line `…`."""
    kept: list[str] = []
    used = 0
    for line in lines:
        cost = len(line) + (1 if kept else 0)
        if used + cost > limit - len("\n" + ELLIPSIS):
            kept.append(ELLIPSIS)
            break
        kept.append(line)
        used += cost
    return "\n".join(kept)[:limit]


class _Links:
    """Console links for a finding: CloudTrail events (in the member account) and the finding."""

    def __init__(self, finding: Finding, *, regional_host: bool) -> None:
        ids = list(dict.fromkeys(finding.event_ids))
        self.events = [
            (event_id, cloudtrail_event_url(finding.region, event_id, regional_host=regional_host))
            for event_id in ids[:MAX_EVENT_LINKS]
        ]
        self.more_events = [one_line(i, 80) for i in ids[MAX_EVENT_LINKS:]]
        self.finding = securityhub_finding_url(
            finding.region, finding.id, regional_host=regional_host
        )


@cache
def _registry() -> dict[str, DetectionMetadata]:
    return {d.metadata.id: d.metadata for d in all_detections()}


def _metadata(detection_id: str) -> DetectionMetadata | None:
    """The detection's own (trusted) metadata; the finding's description embeds event values."""
    return _registry().get(detection_id)


def _attack_lines(finding: Finding, metadata: DetectionMetadata | None) -> list[str]:
    if metadata:
        refs = [
            f"{a.tactic_id} {a.tactic} / {a.technique_id} {a.technique}" for a in metadata.attack
        ]
    else:
        refs = [f"{t.tactic} / {t.technique}" for t in finding.mitre]
    return [f"  MITRE ATT&CK: {ref}" for ref in refs]


def _kv(label: str, value: object, *, plain: bool = False, limit: int = VALUE_LIMIT) -> str:
    """One `label: value` line, wrapped; values are treated as attacker-controlled unless
    `plain` (our own text)."""
    text = one_line(as_text(value), limit) if plain else email_line(value, limit)
    return textwrap.fill(
        text or "-",
        width=EMAIL_WIDTH,
        initial_indent=f"  {label + ':':<16}",
        subsequent_indent=" " * 18,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _optional_kv(*pairs: tuple[str, object]) -> list[str]:
    return [_kv(label, value) for label, value in pairs if _present(value)]


def _present(value: object) -> bool:
    return value is not None and value not in ("", [], {})


def _summary(finding: Finding, metadata: DetectionMetadata | None) -> str:
    """What happened, without the detection's boilerplate (shown under "why it matters")."""
    if metadata and finding.description.startswith(metadata.description):
        return finding.description.removeprefix(metadata.description).strip() or "-"
    return finding.description


def _display(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "targets" and isinstance(value, list):
        return "; ".join(
            f"{as_text(t.get('key'))}={as_text(t.get('values'))}"
            if isinstance(t, dict)
            else as_text(t)
            for t in value
        )
    return as_text(value)


def _other_details(finding: Finding) -> list[str]:
    known = {key for key, _ in _WHAT_FIELDS} | _SHOWN_ELSEWHERE
    others = [key for key in sorted(finding.context) if key not in known]
    return [
        _kv(one_line(key, 16), _display(key, finding.context[key]))
        for key in others[:_MAX_OTHER_DETAILS]
        if _present(finding.context[key])
    ]


def _instance_ids(finding: Finding) -> list[str]:
    from_resources = [r.label or r.id for r in _of_type(finding, ResourceType.EC2_INSTANCE)]
    listed = finding.context.get("window_instance_ids") or finding.context.get("instance_ids")
    from_context = [as_text(i) for i in listed] if isinstance(listed, list) else []
    return list(dict.fromkeys(from_resources + from_context))


def _of_type(finding: Finding, kind: ResourceType) -> list[Resource]:
    return [r for r in finding.resources if r.type is kind]


def _paragraph(text: str) -> list[str]:
    return textwrap.wrap(
        one_line(text, 4000),
        width=EMAIL_WIDTH,
        initial_indent="  ",
        subsequent_indent="  ",
        break_on_hyphens=False,
        break_long_words=False,
    ) or ["  -"]


def _when(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC"


def _string_attribute(value: str) -> dict[str, str]:
    # SNS rejects empty attribute values; filter policies then simply do not match.
    return {"DataType": "String", "StringValue": ascii_line(value, 256) or "unknown"}


def _message(default: str, email: str, chatbot: dict[str, Any]) -> str:
    https = json.dumps(chatbot, ensure_ascii=False, separators=(",", ":"))
    return json.dumps({"default": default, "email": email, "https": https}, ensure_ascii=False)


def _size(subject: str, message: str, attributes: dict[str, dict[str, str]]) -> int:
    total = len(subject.encode()) + len(message.encode())
    for name, value in attributes.items():
        total += len(name.encode()) + len(value["DataType"].encode())
        total += len(value["StringValue"].encode())
    return total


@cache
def _char_cost(char: str) -> int:
    return len(json.dumps(char, ensure_ascii=False).encode()) - 2


def _json_bytes(text: str) -> int:
    return sum(_char_cost(c) for c in text)


def _json_prefix(text: str, budget: int) -> str:
    """The longest prefix of `text` whose JSON-escaped UTF-8 form fits in `budget` bytes."""
    totals = list(accumulate(_char_cost(c) for c in text))
    low, high = 0, len(totals)
    while low < high:  # first index whose running total exceeds the budget
        middle = (low + high) // 2
        if totals[middle] > budget:
            high = middle
        else:
            low = middle + 1
    return text[:low]
