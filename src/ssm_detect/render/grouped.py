"""One notification for the findings of one event (and escalations), composed of each finding's
own rendering (`render.sns_message.format_sns`): a head that lists every detection with its
severity and, for an escalation, the level it rises from and what changed; then each finding's
email and Slack sections as `format_sns` renders them. Pure: no boto3, no clock.

A single finding that is not an escalation is rendered by `format_sns` unchanged. Limits are
those of `format_sns` (subject 99 printable ASCII characters with the severity and the account
never cut, Chatbot title 250 and description 3,000 characters, 8 next steps, SNS's 256 KiB):
when the sections together are too large, the email is cut from its end with a note, as
`format_sns` does for one finding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ssm_detect.findings import Finding
from ssm_detect.render.escape import ascii_line, email_line, one_line, slack_code, slack_text
from ssm_detect.render.sns_message import (
    DEFAULT_OPTIONS,
    MAX_SNS_BYTES,
    MAX_SUBJECT,
    RenderOptions,
    SnsMessage,
    format_sns,
)

ESCALATION = "escalation"  # the context key delivery.py sets (kept apart to avoid a cycle)
MAX_CHATBOT_TITLE = 250
MAX_CHATBOT_DESCRIPTION = 3000
MAX_NEXT_STEPS = 8
TRUNCATED_NOTE = "\n\n[Message truncated to fit the SNS size limit; see each finding for the rest.]"
_RULE = "-" * 78


def format_notification(
    findings: Sequence[Finding], options: RenderOptions = DEFAULT_OPTIONS
) -> SnsMessage:
    """One SNS publish for the findings of one event (most severe first)."""
    if not findings:
        raise ValueError("a notification needs at least one finding")
    ordered = sorted(findings, key=lambda f: (-f.severity.rank, f.detection_id))
    if len(ordered) == 1 and ESCALATION not in ordered[0].context:
        return format_sns(ordered[0], options)
    parts = [format_sns(f, options) for f in ordered]
    bodies = [json.loads(p.message) for p in parts]
    subject = _subject(ordered)
    default = " | ".join([_head_line(ordered), *(b["default"] for b in bodies)])
    email = (
        "\n".join(_email_head(ordered)) + "\n\n" + f"\n{_RULE}\n\n".join(b["email"] for b in bodies)
    )
    chatbot = _chatbot(ordered, [json.loads(b["https"]) for b in bodies])
    attributes = dict(parts[0].message_attributes)
    # `detection_id` stays the most severe one's (existing filter policies keep matching it);
    # every detection of the notification is in `detection_ids`, which filter policies match
    # element by element.
    ids = list(dict.fromkeys(ascii_line(f.detection_id, 128) for f in ordered))
    attributes["detection_ids"] = {"DataType": "String.Array", "StringValue": json.dumps(ids)}
    message = _fit(subject, default, email, chatbot, attributes)
    return SnsMessage(subject, message, attributes)


def headline(findings: Sequence[Finding]) -> str:
    """What the subject and titles say after the severity: the escalation or the list."""
    first = findings[0]
    escalation = first.context.get(ESCALATION)
    if len(findings) == 1 and isinstance(escalation, dict):
        return f"escalated from {escalation.get('from')}: {first.title}"
    titles = " + ".join(f.title for f in findings)
    if isinstance(escalation, dict):
        return f"escalated from {escalation.get('from')}: {titles}"
    return f"{len(findings)} findings: {titles}"


def _subject(findings: Sequence[Finding]) -> str:
    top = findings[0]
    head = f"[ssm-detect] {top.severity.value}: "
    tail = f" ({top.account_id})"
    room = MAX_SUBJECT - len(head) - len(tail)
    return head + ascii_line(headline(findings), max(room, 8)) + tail


def _head_line(findings: Sequence[Finding]) -> str:
    listed = ", ".join(f"{f.detection_id} {f.severity.value}" for f in findings)
    return f"ssm-detect: {len(findings)} finding(s) from one event: {listed}."


def _email_head(findings: Sequence[Finding]) -> list[str]:
    top = findings[0]
    title = one_line(headline(findings), 200)
    lines = [
        title,
        "=" * min(len(title), 78),
        "",
        f"One event raised {len(findings)} finding(s) for principal "
        f"{email_line(top.principal.key, 200)} in account {email_line(top.account_id, 20)}:",
    ]
    lines += [
        f"  - {finding.severity.value:<13} {finding.detection_id} "
        f"(finding {one_line(finding.id, 120)}, occurrences {finding.count})"
        for finding in findings
    ]
    for finding in findings:
        lines += _escalation_lines(finding, email=True)
    lines += ["", "Each finding follows, most severe first."]
    return lines


def _escalation_lines(finding: Finding, *, email: bool) -> list[str]:
    escalation = finding.context.get(ESCALATION)
    if not isinstance(escalation, dict):
        return []
    text = email_line if email else slack_text
    changed = escalation.get("changed") or []
    head = (
        f"ESCALATED from {escalation.get('from')} to {escalation.get('to')}: "
        f"{finding.detection_id} (the window had notified {escalation.get('from')})"
    )
    lines = ["", head if email else f"*{head}*"]
    lines += [f"  - {text(item, 300)}" for item in changed if isinstance(item, str)]
    return lines


def _chatbot(findings: Sequence[Finding], parts: list[dict[str, Any]]) -> dict[str, Any]:
    top, first = findings[0], parts[0]
    emoji = first["content"]["title"].split(" ", 1)[0]
    title = f"{emoji} [{top.severity.value}] {slack_text(headline(findings), 200)}"
    listing = [
        f"- *{f.severity.value}* {slack_code(f.detection_id, 80)} (occurrences {f.count})"
        for f in findings
    ]
    escalations = [line for f in findings for line in _escalation_lines(f, email=False)]
    sections = [
        "\n".join([f"One event raised {len(findings)} finding(s):", *listing, *escalations]),
        *(p["content"]["description"] for p in parts),
    ]
    description = _cut("\n\n".join(sections), MAX_CHATBOT_DESCRIPTION)
    next_steps: list[str] = []
    for part in parts:
        next_steps += [s for s in part["content"]["nextSteps"] if s not in next_steps]
    keywords: list[str] = []
    for part in parts:
        keywords += [k for k in part["content"]["keywords"] if k not in keywords]
    content = dict(first["content"])
    content.update(
        title=title[:MAX_CHATBOT_TITLE],
        description=description,
        nextSteps=next_steps[:MAX_NEXT_STEPS],
        keywords=keywords[:8],
    )
    return dict(first, content=content)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(default: str, email: str, chatbot: dict[str, Any]) -> str:
    https = json.dumps(chatbot, ensure_ascii=False, separators=(",", ":"))
    return json.dumps({"default": default, "email": email, "https": https}, ensure_ascii=False)


def _size(subject: str, message: str, attributes: dict[str, dict[str, str]]) -> int:
    total = len(subject.encode()) + len(message.encode())
    for name, value in attributes.items():
        total += len(name.encode()) + len(value["DataType"].encode())
        total += len(value["StringValue"].encode())
    return total


def _fit(
    subject: str,
    default: str,
    email: str,
    chatbot: dict[str, Any],
    attributes: dict[str, dict[str, str]],
) -> str:
    """The message within SNS's limit: the email is cut from its end when it must be."""
    default = default[:4000]
    message = _message(default, email, chatbot)
    if _size(subject, message, attributes) <= MAX_SNS_BYTES:
        return message
    low, high = 0, len(email)
    while low < high:  # the longest prefix of the email that fits with the note
        middle = (low + high + 1) // 2
        trial = _message(default, email[:middle] + TRUNCATED_NOTE, chatbot)
        if _size(subject, trial, attributes) <= MAX_SNS_BYTES:
            low = middle
        else:
            high = middle - 1
    return _message(default, email[:low] + TRUNCATED_NOTE, chatbot)
