"""What a responder looks for in SSM content, found without running it: the one inspector.

Every text we see goes through `inspect_content`: document content (any type: Command,
Automation, Session), association, automation and maintenance-window parameters, visible
SendCommand parameters and interactive session commands. Content is JSON or YAML (schema 2.2
`mainSteps`, older `runtimeConfig`, Automation `aws:executeScript` steps, a Session document's
`shellProfile`), but commands also hide in parameter defaults, so we do not follow one schema:
we parse the text, collect every string in it, and read the lines in order. If the text does
not parse, its raw lines are read instead.

Two kinds of evidence. Line rules (`RULES`) match one line each: reverse shells, instance-
metadata credential theft, encoded payloads, persistence, disabling security tooling.
Download-and-execute, and reverse shells spread over several lines, are facts joined across the
whole text (`content_facts`): a fetch and an execution, however they are split between lines,
commands and interpreters (sh/bash/zsh, Python, Perl, PHP, Ruby, Node, PowerShell).

Bounded on hostile input: content over `MAX_CONTENT_CHARS` is scanned only up to that size,
YAML aliases (the "billion laughs" expansion) make the YAML parse fail and fall back to raw
lines, nesting that exhausts the recursion limit does the same, at most `MAX_LINES` lines of
at most `MAX_LINE_CHARS` characters are read, every pattern is free of nested quantifiers, and
each line is read a fixed number of times, so the work stays linear in the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from detections.content_facts import DOWNLOAD_EXECUTE, REVERSE_SHELL, FactJoiner
from detections.content_shell import normalise
from ssm_detect.findings import Severity

MAX_CONTENT_CHARS = 256 * 1024  # the API accepts 64 KB; anything larger is not a real document
MAX_LINES = 5000
MAX_LINE_CHARS = 4096
MAX_HITS = 20
MAX_SHOWN_CHARS = 200
MAX_STRINGS = 10_000
MAX_NESTING = 64
_BRACKETS = re.compile(r"[^\[\]{}]+")
_INDENT = re.compile(r"^[ \t]*", re.MULTILINE)


@dataclass(frozen=True)
class ContentRule:
    id: str
    title: str
    pattern: re.Pattern[str]
    severe: bool
    """Evidence strong enough on its own to raise a finding to HIGH."""


def _rule(rule_id: str, title: str, pattern: str, *, severe: bool) -> ContentRule:
    return ContentRule(rule_id, title, re.compile(pattern, re.IGNORECASE), severe)


RULES: tuple[ContentRule, ...] = (
    # Download-and-execute is not a line rule: content_facts joins its two halves.
    _rule(
        "reverse_shell",
        "opens a reverse shell",
        r"/dev/(tcp|udp)/|\bn(c|cat|etcat)\b[^\n]{0,200}\s-[a-z]*[ec]\b|\bbash\s+-i\s*>&"
        r"|\bsocat\b[^\n]{0,200}\bexec:|\bmkfifo\b[^\n]{0,200}\bn(c|cat)\b"
        r"|socket\.socket\([^\n]{0,300}(subprocess|pty\.spawn|os\.dup2)"
        r"|net\.sockets\.tcpclient",
        severe=True,
    ),
    _rule(
        "imds_credentials",
        "reads instance-metadata credentials",
        r"169\.254\.169\.254|/latest/meta-data/iam/security-credentials|fd00:ec2::254"
        r"|169\.254\.170\.2|aws_container_credentials_relative_uri",
        severe=True,
    ),
    _rule(
        "encoded_payload",
        "runs an encoded payload",
        r"\bbase64\s+(-d|--decode|-D)\b[^\n]{0,200}\|\s*(ba)?sh\b"
        r"|\s-e(nc|ncodedcommand|c)?\s+[a-z0-9+/=]{40,}"
        r"|frombase64string\([^\n]{0,200}\)[^\n]{0,200}(\biex\b|invoke-expression)"
        r"|\becho\s+[a-z0-9+/=]{60,}\s*\|\s*base64\s",
        severe=True,
    ),
    _rule(
        "persistence",
        "installs persistence",
        r"\bcrontab\b|/etc/cron|/etc/systemd/system/|\bsystemctl\s+enable\b"
        r"|authorized_keys|\b(useradd|adduser)\b|/etc/rc\.local|/etc/sudoers"
        r"|\bschtasks(\.exe)?\s+/create\b|\bregister-scheduledtask\b|\\currentversion\\run\b",
        severe=False,
    ),
    _rule(
        "defense_evasion",
        "disables security tooling or erases traces",
        r"\bsystemctl\s+(stop|disable|mask)\s+(amazon-ssm-agent|auditd|falcon-sensor|osqueryd"
        r"|amazon-cloudwatch-agent|amazon-guardduty-agent|crowdstrike|wazuh-agent)"
        r"|\bsetenforce\s+0\b|set-mppreference\s[^\n]{0,100}-disable"
        r"|\biptables\s+-F\b|\bhistory\s+-c\b|unset\s+histfile|\bshred\b[^\n]{0,100}/var/log"
        r"|\brm\s+-[rf]+\s+[^\n]{0,100}(/var/log|\.bash_history)|\bauditctl\s+-e\s*0\b",
        severe=False,
    ),
)


JOINED_TITLES = {
    DOWNLOAD_EXECUTE: "downloads and executes code",
    REVERSE_SHELL: "opens a reverse shell",
}
SEVERE_RULES = frozenset({DOWNLOAD_EXECUTE, *(rule.id for rule in RULES if rule.severe)})
"""Evidence strong enough on its own to raise a finding to HIGH."""


@dataclass(frozen=True)
class ContentHit:
    rule_id: str
    title: str
    line_number: int
    line: str
    """The matching line, stripped and truncated; renderers escape it."""
    related_line_number: int | None = None
    """For joined evidence: the line holding the other half (the fetch, the socket)."""
    how: str | None = None
    """For joined evidence: how the halves were joined."""


@dataclass(frozen=True)
class ContentReport:
    parsed_as: str
    """"json", "yaml" or "text" (did not parse: raw lines were scanned)."""
    hits: tuple[ContentHit, ...]
    truncated: bool

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(hit.rule_id for hit in self.hits))

    @property
    def severe(self) -> bool:
        return any(hit.rule_id in SEVERE_RULES for hit in self.hits)


def inspect_content(content: str) -> ContentReport:
    """Parse and scan content (or parameters); never raises on any input string."""
    truncated = len(content) > MAX_CONTENT_CHARS
    text = content[:MAX_CONTENT_CHARS]
    parsed_as, strings = _strings_of(text)
    hits: list[ContentHit] = []
    shown: dict[int, str] = {}
    joiner = FactJoiner()
    for number, line in enumerate(_lines(strings), start=1):
        shown[number] = line[:MAX_SHOWN_CHARS]
        matched = normalise(line)
        hits.extend(
            ContentHit(rule.id, rule.title, number, shown[number])
            for rule in RULES
            if rule.pattern.search(matched)
        )
        joiner.feed(number, matched)
        if len(hits) + len(joiner.joined) >= MAX_HITS:
            truncated = True
            break
    hits.extend(
        ContentHit(
            joined.rule_id,
            JOINED_TITLES[joined.rule_id],
            joined.line_number,
            shown[joined.line_number],
            joined.related_line_number,
            joined.how,
        )
        for joined in joiner.joined
    )
    ordered = sorted(_distinct(hits), key=lambda hit: hit.line_number)
    return ContentReport(parsed_as, tuple(ordered[:MAX_HITS]), truncated)


def _distinct(hits: list[ContentHit]) -> list[ContentHit]:
    """One hit per (rule, line): a joined reverse shell repeats a line rule's."""
    seen: dict[tuple[str, int], ContentHit] = {}
    for hit in hits:
        seen.setdefault((hit.rule_id, hit.line_number), hit)
    return list(seen.values())


def _strings_of(text: str) -> tuple[str, list[str]]:
    if _nesting_depth(text) > MAX_NESTING:
        # No real document nests this deep. Parsers recurse per level (libyaml in C, where
        # running out of stack is a segfault, not an exception), so we do not hand it to them.
        return "text", [text]
    for name, parse in (("json", json.loads), ("yaml", _safe_yaml)):
        try:
            document = parse(text)
        except (ValueError, RecursionError):
            continue
        # JSON that parses is structure (parameters are a JSON object of lists of commands);
        # YAML reads almost any text as structure, so it must look like an SSM document.
        structured = isinstance(document, dict | list) if name == "json" else False
        if structured or (isinstance(document, dict) and "schemaVersion" in document):
            return name, list(_walk(document))
    # Not an SSM document (SSM refuses content without `schemaVersion`, so this is a failed
    # call or plain text): scan its lines as written. A parse would mislead here: YAML reads
    # `curl -H "A: b" https://x | sh` as a mapping and splits the command at its colon.
    return "text", [text]


def parse_document(text: str) -> dict[str, object] | None:
    """An SSM document's content as a mapping (JSON or YAML, same bounds as the inspector);
    None when it does not parse or is not a mapping."""
    if len(text) > MAX_CONTENT_CHARS or _nesting_depth(text) > MAX_NESTING:
        return None
    for parse in (json.loads, _safe_yaml):
        try:
            document = parse(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(document, dict):
            return document
    return None


def _nesting_depth(text: str) -> int:
    """An upper bound on how deep a JSON or YAML document nests: flow brackets (counted even
    inside strings, which can only overestimate) and block indentation (two spaces a level)."""
    depth = deepest = 0
    for bracket in _BRACKETS.sub("", text):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    indent = max((len(m.group()) for m in _INDENT.finditer(text)), default=0)
    return max(deepest, indent // 2)


def _safe_yaml(text: str) -> object:
    """YAML without anchors/aliases: a few bytes of aliases can expand to gigabytes."""
    if re.search(r"(^|[\s\[{,])[&*][^\s\]},]", text):
        raise ValueError("YAML anchors and aliases are not accepted")
    # Imported here: CloudTrail hides document content unless told otherwise, so most execution
    # environments never parse YAML and need not pay its import at cold start.
    import yaml  # noqa: PLC0415

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        # CSafeLoader/SafeLoader build only plain types; bandit cannot see that through the name.
        return yaml.load(text, Loader=loader)  # noqa: S506  # nosec B506
    except yaml.YAMLError as error:
        raise ValueError(f"not YAML: {error}") from error


def _walk(node: object) -> Iterator[str]:
    """Every string (keys included) in a parsed document, iteratively, at most MAX_STRINGS."""
    stack = [node]
    produced = 0
    while stack and produced < MAX_STRINGS:
        current = stack.pop()
        if isinstance(current, str):
            produced += 1
            yield current
        elif isinstance(current, dict):
            for key, value in reversed(list(current.items())):
                stack.append(value)
                stack.append(str(key))
        elif isinstance(current, list):
            stack.extend(reversed(current))


def _lines(strings: list[str]) -> Iterator[str]:
    """Non-blank lines, stripped, a shell `\\` or PowerShell backquote continuation joined to
    the next line; at most MAX_LINES lines of at most MAX_LINE_CHARS characters."""
    count = 0
    pending = ""
    for value in strings:
        for line in value.splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.endswith(("\\", "`")) and len(pending) < MAX_LINE_CHARS:
                pending = f"{pending}{stripped[:-1]} "
                continue
            count += 1
            if count > MAX_LINES:
                return
            yield (pending + stripped)[:MAX_LINE_CHARS]
            pending = ""
    if pending and count < MAX_LINES:
        yield pending[:MAX_LINE_CHARS]


def escalate(severity: Severity, report: ContentReport) -> tuple[Severity, tuple[str, ...]]:
    """The severity model's content evidence: a severe hit makes a finding at least HIGH, a
    severe hit plus another kind of hit makes it CRITICAL, other hits raise it one step."""
    if not report.hits:
        return severity, ()
    kinds = ", ".join(report.categories)
    if report.severe and len(report.categories) > 1:
        return Severity.CRITICAL, (f"raised to CRITICAL: content {kinds}",)
    if report.severe:
        target = max(severity, Severity.HIGH, key=lambda s: s.rank)
        return target, (f"raised to {target}: content {kinds}",)
    return severity.raised(), (f"raised one step: content {kinds}",)


def hits_context(report: ContentReport) -> list[dict[str, object]]:
    return [_hit_context(hit) for hit in report.hits]


def _hit_context(hit: ContentHit) -> dict[str, object]:
    shown: dict[str, object] = {
        "rule": hit.rule_id,
        "what": hit.title,
        "line_number": hit.line_number,
        "line": hit.line,
    }
    if hit.related_line_number is not None and hit.related_line_number != hit.line_number:
        shown["joined_with_line"] = hit.related_line_number
    if hit.how:
        shown["how"] = hit.how
    return shown
