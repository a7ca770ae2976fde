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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from itertools import accumulate
from typing import Any

from detections import all_detections
from detections.base import DetectionMetadata
from ssm_detect.findings import Finding, Resource, ResourceType, Severity
from ssm_detect.render import evidence, facts
from ssm_detect.render.asff import (
    api_call,
    cloudtrail_event_url,
    scalar_text,
    securityhub_finding_url,
)
from ssm_detect.render.escape import (
    ASCII_ELLIPSIS,
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
EMAIL_CONTENT_LIMIT = 16_000
REDACTED = "[redacted by configuration]"
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
        "content_length",
        "content_findings",
        "parameter_findings",
        facts.ACTORS,
        facts.CONTRIBUTING_EVENTS,
    }
)
# An actor's fields in the order shown, with labels; Slack shows the subset an analyst acts on.
_ACTOR_FIELDS = (
    ("arn", "ARN"),
    ("principal_key", "Principal"),
    ("type", "Type"),
    ("session_name", "Session"),
    ("access_key_id", "Access key"),
    ("source_ip", "Source IP"),
    ("user_agent", "User agent"),
    ("event_id", "Event"),
    ("event_time", "Event time"),
    ("account_id", "Account"),
    ("region", "Region"),
)
_SLACK_ACTOR_FIELDS = frozenset(
    {"session_name", "access_key_id", "source_ip", "event_id", "account_id", "region"}
)
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
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


@dataclass(frozen=True)
class RenderOptions:
    """How notifications are rendered for one deployment."""

    console_region_links: bool = True
    """Put the region in the console host (`https://us-west-2.console.aws.amazon.com/...`);
    otherwise the global host is used."""
    import_region: str | None = None
    """Where Security Hub imports the findings (the detector's region); None: the finding's."""
    import_account: str | None = None
    """The account that imports the findings (the detector's); None: the finding's."""
    redact_content: bool = False
    """Leave document content and matched lines out of email and Slack (Security Hub keeps
    them), for teams whose channels are read widely."""


DEFAULT_OPTIONS = RenderOptions()


def _with_links(options: RenderOptions, console_region_links: bool | None) -> RenderOptions:  # noqa: FBT001
    if console_region_links is None or console_region_links == options.console_region_links:
        return options
    return replace(options, console_region_links=console_region_links)


def format_sns(
    finding: Finding,
    options: RenderOptions = DEFAULT_OPTIONS,
    *,
    console_region_links: bool | None = None,
) -> SnsMessage:
    """One SNS publish for a finding: short default text, email text and a Chatbot message.

    `console_region_links` (kept for callers that predate `RenderOptions`) overrides the
    option of the same name.
    """
    options = _with_links(options, console_region_links)
    attributes = {
        "severity": _string_attribute(finding.severity.value),
        "detection_id": _string_attribute(finding.detection_id),
        "account_id": _string_attribute(finding.account_id),
    }
    subject = render_subject(finding)
    default = render_default(finding, options)
    email = render_email(finding, options)
    description_limit = MAX_CHATBOT_DESCRIPTION
    while True:
        chatbot = render_chatbot(finding, options, description_limit=description_limit)
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


def render_subject(finding: Finding, prefix: str = "") -> str:
    """`[ssm-detect] SEVERITY: title (account)`, at most 99 printable ASCII characters: the
    title is cut, never the severity or the account."""
    head = ascii_line(f"[ssm-detect] {prefix}{finding.severity.value}:", 60)
    tail = ascii_line(f"({finding.account_id})", 30)
    room = MAX_SUBJECT - len(head) - len(tail) - 2
    title = ascii_line(finding.title, room) if room > len(ASCII_ELLIPSIS) else ""
    return " ".join(part for part in (head, title, tail) if part)


def render_default(finding: Finding, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """The short plain-text message for protocols without their own rendering."""
    links = Links(finding, options)
    text = (
        f"ssm-detect {finding.severity.value}: {finding.title}. "
        f"Principal {email_line(finding.principal.key, 200)} in account "
        f"{email_line(finding.account_id, 20)}, region {email_line(finding.region, 20)}, "
        f"last seen {_when(finding.last_seen)} ({finding.count} occurrence(s)). "
        f"Finding {one_line(finding.id, 120)}."
    )
    if links.events:
        text += f" CloudTrail: {links.events[0].url}"
    return text


def render_email(
    finding: Finding,
    options: RenderOptions = DEFAULT_OPTIONS,
    *,
    console_region_links: bool | None = None,
) -> str:
    """The plain-text email body: sections in the order an analyst reads them, evidence first,
    the document content last (the SNS size limit cuts it first). Each section is a public
    function, so a notification that groups findings can compose them."""
    options = _with_links(options, console_region_links)
    sections = (
        email_heading(finding),
        email_evidence(finding, options),
        email_who(finding),
        email_actors(finding),
        email_what(finding),
        email_where(finding),
        email_when(finding),
        email_why(finding),
        email_todo(finding),
        email_links(finding, options),
        email_content(finding, options),
    )
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"


def email_heading(finding: Finding) -> list[str]:
    """Title, severity (and why), detection, finding id and what happened."""
    metadata = _metadata(finding.detection_id)
    reasons = "; ".join(finding.severity_reasons)
    title = one_line(finding.title, 200)
    return [
        title,
        "=" * min(len(title), EMAIL_WIDTH),
        "",
        _kv("Severity", finding.severity.value + (f" ({reasons})" if reasons else ""), plain=True),
        _kv("Detection", finding.detection_id, plain=True),
        _kv("Finding id", finding.id, plain=True),
        "",
        *_paragraph(email_line(_summary(finding, metadata), 2000)),
    ]


def email_evidence(finding: Finding, options: RenderOptions = DEFAULT_OPTIONS) -> list[str]:
    """`MATCHED`: one line per hit (where, rule, line number, the escaped line)."""
    found = evidence.hits(finding)
    if not found:
        return []
    lines = [f"MATCHED ({len(found)}: attacker-controlled text, escaped, links defanged)"]
    for hit in found:
        where = f"{hit.source} line {hit.line_number}" if hit.line_number else hit.source
        text = REDACTED if options.redact_content else email_line(hit.line, VALUE_LIMIT)
        lines.append(
            textwrap.fill(
                f"- [{hit.rule}] {where} ({one_line(hit.what, 80)}): {text}",
                width=EMAIL_WIDTH,
                initial_indent="  ",
                subsequent_indent="      ",
                break_on_hyphens=False,
                break_long_words=False,
            )
        )
    return lines


def email_who(finding: Finding) -> list[str]:
    principal = finding.principal
    lines = ["WHO", _kv("Principal", principal.key), _kv("Type", principal.type)]
    lines += _optional_kv(
        ("Identity ARN", principal.arn if principal.arn != principal.key else None),
        ("Role", principal.role_arn if principal.role_arn != principal.key else None),
        ("Session name", principal.session_name),
        ("Access key", principal.access_key_id),
    )
    lines += [_kv("Source IP", finding.source_ip), _kv("User agent", finding.user_agent)]
    return lines


def email_actors(finding: Finding) -> list[str]:
    """`ACTORS`: each actor of a multi-actor finding (a chain's creator and executor)."""
    found = facts.actors(finding)
    if not found:
        return []
    lines = ["ACTORS"]
    for actor in found:
        lines.append(f"  {facts.actor_label(one_line(actor.role, 40))}:")
        lines += [
            _kv(label, _actor_value(actor, name), indent=4)
            for name, label in _ACTOR_FIELDS
            if getattr(actor, name)
        ]
    return lines


def email_what(finding: Finding) -> list[str]:
    lines = ["WHAT", _kv("API call", f"ssm:{api_call(finding)}", plain=True)]
    lines += [
        _kv(label, _what_value(finding, key))
        for key, label in _WHAT_FIELDS
        if _present(finding.context.get(key))
    ]
    return lines + _other_details(finding)


def email_where(finding: Finding) -> list[str]:
    lines = ["WHERE", _kv("Account", finding.account_id), _kv("Region", finding.region)]
    instances = _instance_places(finding)
    if instances:
        shown = ", ".join(instances[:50])
        more = f" (+{len(instances) - 50} more)" if len(instances) > 50 else ""
        lines.append(_kv(f"Instances ({len(instances)})", shown + more, limit=LIST_LIMIT))
    lines += _optional_kv(
        *[("Document ARN", r.id) for r in _of_type(finding, ResourceType.SSM_DOCUMENT)]
    )
    return lines


def email_when(finding: Finding) -> list[str]:
    return [
        "WHEN (UTC)",
        _kv("First seen", _when(finding.first_seen), plain=True),
        _kv("Last seen", _when(finding.last_seen), plain=True),
        _kv("Occurrences", str(finding.count), plain=True),
    ]


def email_why(finding: Finding) -> list[str]:
    metadata = _metadata(finding.detection_id)
    lines = ["WHY IT MATTERS"]
    lines += _paragraph(metadata.description if metadata else email_line(finding.description, 1000))
    lines += _attack_lines(finding, metadata)
    if metadata:
        lines += ["  Usual false positives:"]
        lines += [f"    - {fp}" for fp in metadata.false_positives]
    return lines


def email_todo(finding: Finding) -> list[str]:
    return ["WHAT TO DO", *_paragraph(finding.runbook or "-")]


def email_links(finding: Finding, options: RenderOptions = DEFAULT_OPTIONS) -> list[str]:
    """Each CloudTrail event in its own account and region; the finding where it is imported."""
    links = Links(finding, options)
    lines = ["LINKS"]
    lines += [
        f"  CloudTrail event {email_line(link.event_id, 80)} (open in account "
        f"{email_line(link.account_id, 20)}, {email_line(link.region, 20)}"
        + (f", {_when_text(link.event_time)}" if link.event_time else "")
        + f"):\n    {link.url}"
        for link in links.events
    ]
    if links.more_events:
        lines.append(_kv("More events", ", ".join(links.more_events), limit=LIST_LIMIT))
    lines.append(
        f"  Security Hub finding (open in account {email_line(links.import_account, 20)}, "
        f"{email_line(links.import_region, 20)}):\n    {links.finding}"
    )
    lines += [f"  Reference: {reference}" for reference in finding.references]
    return lines


def email_content(finding: Finding, options: RenderOptions = DEFAULT_OPTIONS) -> list[str]:
    """The document content around the hits, saying how much of it is shown."""
    content = evidence.content_of(finding)
    if content is None:
        return []
    total = evidence.content_total(finding, content)
    if options.redact_content:
        return [
            f"DOCUMENT CONTENT (redacted by configuration; shown: 0 of {total} characters; "
            "Security Hub holds it)"
        ]
    shown = evidence.excerpt(content, evidence.hits(finding), EMAIL_CONTENT_LIMIT, total)
    return [
        f"DOCUMENT CONTENT ({shown.note}; as CloudTrail recorded it: attacker-controlled, "
        "links defanged)",
        email_block(shown.text),
    ]


def render_chatbot(
    finding: Finding,
    options: RenderOptions = DEFAULT_OPTIONS,
    *,
    description_limit: int = MAX_CHATBOT_DESCRIPTION,
    console_region_links: bool | None = None,
) -> dict[str, Any]:
    """The AWS Chatbot custom notification (schema version 1.0) as a dict."""
    options = _with_links(options, console_region_links)
    links = Links(finding, options)
    severity = finding.severity.value
    title = f"{_EMOJI[finding.severity]} [{severity}] {slack_text(finding.title, 200)}"
    next_steps = [slack_text(s, 300) for s in _SENTENCE_END.split(finding.runbook) if s.strip()]
    next_steps = next_steps[: MAX_NEXT_STEPS - 2]
    for link in links.events[:1]:
        next_steps.append(f"Open CloudTrail event {slack_code(link.event_id, 60)}: {link.url}")
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
            "description": slack_description(finding, options, description_limit),
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


def slack_description(
    finding: Finding, options: RenderOptions = DEFAULT_OPTIONS, limit: int = MAX_CHATBOT_DESCRIPTION
) -> str:
    """The Slack mrkdwn description: the finding's lines, then a content excerpt if room."""
    text = _fit_lines(slack_lines(finding, options), limit)
    excerpt = slack_excerpt(finding, options, limit - len(text) - 1)
    return f"{text}\n{excerpt}" if excerpt else text


def slack_lines(finding: Finding, options: RenderOptions = DEFAULT_OPTIONS) -> list[str]:
    """One finding's Slack lines (evidence before context), each whole and self-contained."""
    metadata = _metadata(finding.detection_id)
    reasons = "; ".join(finding.severity_reasons)
    lines = [
        f"*Severity:* {finding.severity.value}"
        + (f" ({slack_text(reasons, 300)})" if reasons else ""),
        f"*Detection:* {slack_code(finding.detection_id, 80)}",
        *slack_evidence(finding, options),
        *slack_who(finding),
        *slack_actors(finding),
        f"*API call:* {slack_code('ssm:' + api_call(finding), 60)}",
    ]
    for key, label in _WHAT_FIELDS:
        if _present(finding.context.get(key)):
            lines.append(f"*{label}:* {slack_code(_what_value(finding, key), 160)}")
    lines.append(
        f"*Where:* account {slack_code(finding.account_id, 20)}, "
        f"region {slack_code(finding.region, 20)}"
    )
    instances = _instance_places(finding)
    if instances:
        shown = ", ".join(slack_code(i, 80) for i in instances[:5])
        more = f" and {len(instances) - 5} more" if len(instances) > 5 else ""
        lines.append(f"*Instances ({len(instances)}):* {shown}{more}")
    lines.append(
        f"*When:* {_when(finding.first_seen)} to {_when(finding.last_seen)} "
        f"({finding.count} occurrence(s))"
    )
    why = metadata.description if metadata else "See the finding."
    lines.append(f"*Why it matters:* {slack_text(why, 500)}")
    return lines


def slack_evidence(finding: Finding, options: RenderOptions = DEFAULT_OPTIONS) -> list[str]:
    found = evidence.hits(finding)
    if not found:
        return []
    lines = [f"*Matched ({len(found)}):*"]
    for hit in found:
        where = f"{hit.source} line {hit.line_number}" if hit.line_number else hit.source
        text = REDACTED if options.redact_content else slack_code(hit.line, 220)
        lines.append(f"• {slack_code(hit.rule, 40)} {slack_text(where, 40)}: {text}")
    return lines


def slack_who(finding: Finding) -> list[str]:
    principal = finding.principal
    lines = [f"*Who:* {slack_code(principal.key)} ({slack_code(principal.type, 40)})"]
    if principal.session_name:
        lines.append(f"*Session:* {slack_code(principal.session_name, 100)}")
    if principal.access_key_id:
        lines.append(f"*Access key:* {slack_code(principal.access_key_id, 40)}")
    lines.append(f"*Source IP:* {slack_code(finding.source_ip, 60)}")
    lines.append(f"*User agent:* {slack_code(finding.user_agent, 160)}")
    return lines


def slack_actors(finding: Finding) -> list[str]:
    """One line per actor: who, session, key, IP, and the event that makes it an actor."""
    lines: list[str] = []
    for actor in facts.actors(finding):
        parts = [slack_code(actor.identity, 160)]
        parts += [
            f"{label.lower()} {slack_code(_actor_value(actor, name), 100)}"
            for name, label in _ACTOR_FIELDS
            if name in _SLACK_ACTOR_FIELDS and getattr(actor, name)
        ]
        label = slack_text(facts.actor_label(actor.role), 40)
        lines.append(f"*{label}:* " + ", ".join(parts))
    return lines


def slack_excerpt(finding: Finding, options: RenderOptions, room: int) -> str:
    """The document content around the hits as a code block, if `room` allows one."""
    content = evidence.content_of(finding)
    if content is None:
        return ""
    total = evidence.content_total(finding, content)
    if options.redact_content:
        note = f"*Document content:* redacted (shown: 0 of {total} characters)"
        return note if len(note) <= room else ""
    frame = len("*Document content (shown: 000000 of 000000 characters):*\n```\n\n```")
    budget = min(room - frame, SLACK_CONTENT_EXCERPT)
    if budget < 100:
        return ""
    # Escaping can lengthen the text (`<` -> `&lt;`); cut the escaped block to the budget and
    # count as shown only what survives.
    shown = evidence.excerpt(content, evidence.hits(finding), budget, total)
    block = slack_block(shown.text, budget)
    count = shown.shown if len(block) >= len(shown.text) else min(shown.shown, len(block))
    return f"*Document content (shown: {count} of {total} characters):*\n```\n{block}\n```"


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


@dataclass(frozen=True)
class EventLink:
    event_id: str
    url: str
    region: str
    account_id: str
    event_time: str | None


class Links:
    """Console links: each CloudTrail event in its own account and region, and the Security
    Hub finding in the region and account that import it."""

    def __init__(self, finding: Finding, options: RenderOptions = DEFAULT_OPTIONS) -> None:
        regional = options.console_region_links
        places = facts.contributing_events(finding)
        self.events = [
            EventLink(
                p.event_id,
                cloudtrail_event_url(p.region, p.event_id, regional_host=regional),
                p.region,
                p.account_id,
                p.event_time,
            )
            for p in places[:MAX_EVENT_LINKS]
        ]
        self.more_events = [one_line(p.event_id, 80) for p in places[MAX_EVENT_LINKS:]]
        self.import_region = options.import_region or finding.region
        self.import_account = options.import_account or finding.account_id
        self.finding = securityhub_finding_url(
            self.import_region, finding.id, regional_host=regional
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


def _kv(
    label: str,
    value: object,
    *,
    plain: bool = False,
    limit: int = VALUE_LIMIT,
    indent: int = 2,
) -> str:
    """One `label: value` line, wrapped; values are treated as attacker-controlled unless
    `plain` (our own text). A label longer than the column still gets a space before its value."""
    text = one_line(as_text(value), limit) if plain else email_line(value, limit)
    head = f"{' ' * indent}{label}:"
    column = indent + 16
    head = head.ljust(column) if len(head) < column else head + " "
    return textwrap.fill(
        text or "-",
        width=EMAIL_WIDTH,
        initial_indent=head,
        subsequent_indent=" " * column,
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


def _what_value(finding: Finding, key: str) -> str:
    """A context value as an analyst reads it; a command sent to tags has no instance count."""
    value = finding.context[key]
    targets = finding.context.get("targets")
    if key == "instance_count" and value == 0 and isinstance(targets, list) and targets:
        return f"unknown: {_targets_text(targets)}"
    return _display(key, value)


def _display(key: str, value: object) -> str:
    """Readable: yes/no, whole numbers without `.0`, one time format, targets as `key=values`."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, str) and _ISO_TIME.match(value):
        return _when_text(value)
    if key == "targets" and isinstance(value, list):
        return _targets_text(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(scalar_text(v) for v in value)
    return scalar_text(value)


def _targets_text(targets: list[object]) -> str:
    """`tag:Owner=alice` -> `tag Owner=alice`, as the console writes a tag target."""
    parts = []
    for target in targets:
        if isinstance(target, dict):
            key = as_text(target.get("key"))
            key = f"tag {key.removeprefix('tag:')}" if key.startswith("tag:") else key
            parts.append(f"{key}={as_text(target.get('values'))}")
        else:
            parts.append(as_text(target))
    return "; ".join(parts)


def _label(key: str) -> str:
    """`minutes_from_creation_to_execution` -> `Minutes from creation to execution`."""
    words = " ".join(one_line(key, 60).replace("_", " ").split())
    return (words[:1].upper() + words[1:]) or "-"


def _other_details(finding: Finding) -> list[str]:
    known = {key for key, _ in _WHAT_FIELDS} | _SHOWN_ELSEWHERE
    others = [key for key in sorted(finding.context) if key not in known]
    return [
        _kv(_label(key), _display(key, finding.context[key]))
        for key in others[:_MAX_OTHER_DETAILS]
        if _present(finding.context[key])
    ]


def _actor_value(actor: facts.Actor, name: str) -> str:
    value = getattr(actor, name) or ""
    return _when_text(value) if name == "event_time" else value


def _instance_places(finding: Finding) -> list[str]:
    """Instance ids (hybrid `mi-*` nodes too), each with its region/account when it differs
    from the finding's."""
    shown: list[str] = []
    for resource in finding.resources:
        if resource.type not in (ResourceType.EC2_INSTANCE, ResourceType.MANAGED_INSTANCE):
            continue
        name = resource.label or resource.id
        elsewhere = [
            value
            for value, own in (
                (resource.account_id, finding.account_id),
                (resource.region, finding.region),
            )
            if value and value != own
        ]
        shown.append(f"{name} ({'/'.join(elsewhere)})" if elsewhere else name)
    listed = finding.context.get("window_instance_ids") or finding.context.get("instance_ids")
    named = {s.split(" ", 1)[0] for s in shown}
    if isinstance(listed, list):
        shown += [as_text(i) for i in listed if as_text(i) not in named]
    return list(dict.fromkeys(shown))


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


def _when_text(text: str) -> str:
    """An ISO 8601 time in the email's one format; anything else as it is."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return _when(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


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
