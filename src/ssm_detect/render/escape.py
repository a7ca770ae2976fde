"""Make attacker-controlled text safe to show: in Slack (via AWS Chatbot), in plain-text email.

Document names, session names, user agents, comments and document content are chosen by whoever
made the API call. Rendered as they are, they could ping a whole Slack channel (`<!channel>`,
`@here`), plant a clickable link (`<https://evil|click>`, `[approve](https://evil)`), restyle the
message with markdown, hide text with right-to-left overrides or zero-width characters, or rewrite
a terminal with escape sequences.

What the helpers guarantee (each is a single linear pass, so 300 KB of input costs milliseconds):

- `visible_controls`: neutralises by Unicode category, not by a list: every character in Cc
  (controls), Cf (format: bidi overrides, zero-width, tags), Co (private use), Cn (unassigned),
  Cs (lone surrogates), Zl and Zp, every variation selector (which can carry hidden bytes) and
  every blank-looking filler (Hangul fillers, Braille blank, Mongolian selectors...) is replaced
  by its escape (`\\u202e`, `\\x1b`): removed from the text, yet still visible to the analyst, for
  whom a hidden character is itself evidence.
- `defang_urls`: `https://evil.example/x` becomes `hxxps://evil[.]example/x`, the convention
  analysts already read, so no chat app turns it into a link (used inside Slack code).
- `defang_links`: for email, every form a mail client turns into a link: URLs with any scheme
  or a malformed one (`https:/evil`), `javascript:`/`data:`/`mailto:`/`file:`, bare domains,
  IP addresses with a path or port, UNC paths (`\\\\host\\share`: a click leaks NTLM
  credentials) and addresses (`user@evil`).
- `truncate` / `one_line`: at most `limit` characters, ending in the ellipsis marker when cut.
- `slack_code`: one Slack inline-code span, at most `limit` characters including both backticks.
  Inside a code span Slack applies no formatting and links nothing; `&`, `<` and `>` are
  entity-escaped as Slack requires (so `<!channel>`, `<@U123>` and `<url|text>` stay literal),
  backticks that would close the span become U+02CB (modifier letter grave accent). `@` is kept
  as written (Slack parses no mention inside code, and analysts copy addresses from it).
- `slack_text`: the same for prose outside code spans; markdown control characters are swapped
  for look-alikes (`*` -> U+2217, `~` -> U+223C, a word-boundary `_` -> U+FF3F), so nothing is
  restyled, and `@` before a word becomes U+FF20 (fullwidth commercial at), so `@here`,
  `@channel` and `@everyone` cannot notify anyone.
- `email_line` / `email_block`: plain text for email, one line or many, with controls made
  visible and links defanged; `ascii_line` for headers that must be ASCII (the SNS subject).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence

ELLIPSIS = "…"
ASCII_ELLIPSIS = "..."
EMPTY = "(none)"

# Neutralised by category (see `unsafe_code_point`): controls, format characters, private use,
# unassigned code points, lone surrogates, line and paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
# Not in those categories, yet invisible or blank-looking: variation selectors (Mn; a run of
# them can smuggle bytes after a visible character), Mongolian free variation selectors, the
# combining grapheme joiner, Khmer inherent vowels, Hangul fillers (Lo) and the Braille blank
# (So), which make a value look empty.
INVISIBLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
)
_KEPT = frozenset({0x09, 0x0A})  # tab and newline: callers decide one line or many
_NEWLINES = re.compile("\r\n|[\r\u2028\u2029\x85]")
_HOST_AFTER_SCHEME = re.compile(r"(?<=://)[^\s/?#\\]+")
_WWW_HOST = re.compile(r"(?i)www\.[^\s/?#\\]+")
_SCHEME = re.compile(r"(?i)(h)tt(ps?)://|(f)t(p)://")
# Look-alikes that Slack does not interpret (RUF001 would flag them written literally).
SAFE_AT = "\uff20"  # fullwidth commercial at
SAFE_BACKTICK = "\u02cb"  # modifier letter grave accent
SAFE_ASTERISK = "\u2217"  # asterisk operator
SAFE_TILDE = "\u223c"  # tilde operator
SAFE_UNDERSCORE = "\uff3f"  # fullwidth low line
_SLACK_MENTION = re.compile(r"@(?=\w)")
_SLACK_PROSE = str.maketrans({"*": SAFE_ASTERISK, "~": SAFE_TILDE, "`": SAFE_BACKTICK})
_BOUNDARY_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")


def as_text(value: object) -> str:
    """Any context value as text: None is empty, sequences are comma-joined, mappings JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return ", ".join(as_text(item) for item in value)
    return str(value)


def _escape(code: int) -> str:
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def unsafe_code_point(code: int) -> bool:
    """Whether a code point must not reach a reader as it is (tab and newline excepted)."""
    if code in _KEPT:
        return False
    if any(low <= code <= high for low, high in INVISIBLE_RANGES):
        return True
    return unicodedata.category(chr(code)) in UNSAFE_CATEGORIES


class _VisibleTable(dict[int, str]):
    """`str.translate`'s table, filled on first sight of each code point: the decision needs
    the Unicode database (a full table would be a million entries built at cold start), and
    repeated characters are then looked up in C. Bounded: it is emptied past `LIMIT`."""

    LIMIT = 1 << 16

    def __missing__(self, code: int) -> str:
        if len(self) >= self.LIMIT:
            self.clear()
        value = _escape(code) if unsafe_code_point(code) else chr(code)
        self[code] = value
        return value


_VISIBLE = _VisibleTable()


def visible_controls(text: str) -> str:
    """Replace every control / invisible formatting character by its visible escape.

    Tabs and newlines are kept (callers decide whether the text is one line or many); \\r\\n and
    other line separators are first normalised to \\n.
    """
    return _NEWLINES.sub("\n", text).translate(_VISIBLE)


def _dots(match: re.Match[str]) -> str:
    return match.group().replace(".", "[.]")


def _defang_scheme(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{match.group(1)}xx{match.group(2)}://"
    return f"{match.group(3)}x{match.group(4)}://"


def defang_urls(text: str) -> str:
    """`http(s)://`, `ftp://` and `www.` links made non-clickable: `hxxps://evil[.]example/x`.

    Hosts are defanged first, then schemes; a scheme's replacement never contains `http` or
    `ftp`, so no pass can rebuild a link that an earlier one broke.
    """
    text = _WWW_HOST.sub(_dots, _HOST_AFTER_SCHEME.sub(_dots, text))
    return _SCHEME.sub(_defang_scheme, text)


# Every form a mail client links, in one pass (one scan of 300 KB, not six):
# - a UNC path's leading `\\` (Outlook opens `\\host\share`, sending NTLM credentials);
# - an IP address followed by a path or port;
# - a bare domain (letters-only last label: `.zip`, `.sh` and `.md` are real TLDs), anchored at
#   a token start so each position is tried once, and at most 253 characters as DNS allows (so
#   no match is longer than `LINK_MARGIN`, which lets one-line helpers defang only a prefix);
# - an `http`/`ftp` scheme word before a colon, however malformed (`https:/evil`, `http:\\x`);
# - other schemes that open something when clicked (`javascript:`, `data:`, `mailto:`...);
# - the `@` of an address (`user@evil`).
_EMAIL_LINK = re.compile(
    r"(?P<unc>\\\\(?=[\w.\[-]))"
    r"|(?P<ip>(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?=[/\\:]))"
    r"|(?P<domain>(?<![\w.-])(?=[\w.-]{4,253}(?![\w.-]))"
    r"(?:[a-z0-9-]{1,63}\.)+[a-z]{2,24}(?![\w-]|\.[\w-]))"
    r"|\b(?P<http>h)tt(?P<http_s>ps?)(?=:)"
    r"|\b(?P<ftp>f)t(?P<ftp_s>ps?)(?=:)"
    r"|\b(?P<scheme>javascript|vbscript|data|mailto|file|tel|sms|callto|sip|skype|smb|ssh"
    r"|telnet|ldaps?|news|nntp|irc|webcal|wss?|git|search-ms|ms-[a-z-]{1,40}):"
    r"|(?P<at>(?<=[\w.+-])@(?=[\w\[]))",
    re.IGNORECASE,
)


LINK_MARGIN = 512
"""Longer than any text a link pattern matches: defanging a prefix this much longer than what
is shown gives the same shown text as defanging the whole (URL hosts are defanged per dot)."""


def _defang_link(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in ("ip", "domain"):
        return match.group().replace(".", "[.]")
    if kind == "unc":
        return "[\\\\]"
    if kind == "at":
        return "[@]"
    if kind == "scheme":
        return f"{match.group('scheme')}[:]"
    if match.group("http"):
        return f"{match.group('http')}xx{match.group('http_s')}"
    return f"{match.group('ftp')}x{match.group('ftp_s')}"


def defang_links(text: str) -> str:
    """Everything a mail client would turn into a link, made inert (for email):

    `hxxps://evil[.]example/x`, `hxxps:/evil`, `javascript[:]...`, `data[:]...`,
    `mailto[:]...`, `evil[.]example/path`, `203[.]0[.]113[.]9/x`, `[\\\\]host\\share`,
    `user[@]evil`. Each replacement adds brackets, which no pattern matches again.
    """
    return _EMAIL_LINK.sub(_defang_link, defang_urls(text))


def truncate(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """At most `limit` characters; a cut text ends with `marker`."""
    if limit < len(marker):
        raise ValueError(f"limit {limit} is shorter than the marker {marker!r}")
    if len(text) <= limit:
        return text
    return text[: limit - len(marker)] + marker


def one_line(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """Controls made visible, every run of whitespace (newlines too) one space, at most `limit`."""
    return truncate(" ".join(visible_controls(text).split()), limit, marker)


def email_line(value: object, limit: int) -> str:
    """An attacker-controlled value for one line of a plain-text email.

    Controls are made visible before links are defanged, so `evil\u200b.com` cannot hide a
    domain from the patterns; only a prefix that covers what is shown is defanged (linear time,
    small constant, on 300 KB values).
    """
    text = " ".join(visible_controls(as_text(value)).split())
    return truncate(defang_links(text[: limit + LINK_MARGIN]), limit) or EMPTY


def email_block(value: object, limit: int | None = None, indent: str = "    ") -> str:
    """Attacker-controlled multi-line text (document content) for a plain-text email.

    At most `limit` characters of the text (controls made visible; None: all) are shown, links
    defanged (which adds brackets), each line indented; a cut block ends with a line saying how
    much was left out.
    """
    text = visible_controls(as_text(value)).expandtabs(4)
    cut = limit is not None and len(text) > limit
    shown = defang_links(text[:limit] if cut else text)
    lines = [indent + line.rstrip() for line in shown.split("\n")]
    if cut and limit is not None:
        lines.append(f"{indent}[{len(text) - limit} more characters not shown]")
    return "\n".join(lines)


def ascii_line(text: str, limit: int) -> str:
    """One line of printable ASCII (for headers such as an email subject), at most `limit`."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    printable = "".join(ch if " " <= ch <= "~" else " " for ch in folded)
    return truncate(" ".join(printable.split()), limit, ASCII_ELLIPSIS)


def _slack_entities(text: str) -> str:
    # Slack's three control characters, escaped as Slack documents; `&` first.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate_escaped(text: str, limit: int) -> str:
    """Truncate entity-escaped text without splitting an entity such as `&amp;`."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    return _ENTITY_TAIL.sub("", cut) + ELLIPSIS


def slack_code(value: object, limit: int = 200) -> str:
    """An attacker-controlled value as one Slack inline-code span of at most `limit` characters.

    An empty value is `(none)`, without a code span.
    """
    if limit < 2 + len(ELLIPSIS) + 1:
        raise ValueError(f"limit {limit} leaves no room for the value")
    text = " ".join(visible_controls(as_text(value)).split())
    if not text:
        return EMPTY
    text = defang_urls(text).replace("`", SAFE_BACKTICK)
    return f"`{_truncate_escaped(_slack_entities(text), limit - 2)}`"


def slack_text(value: object, limit: int) -> str:
    """Prose for Slack client-markdown (outside code spans), at most `limit` characters.

    Meant for our own text (titles, runbooks) as defence in depth; attacker values belong in
    `slack_code`.
    """
    text = " ".join(visible_controls(as_text(value)).split())[: limit + LINK_MARGIN]
    text = _BOUNDARY_UNDERSCORE.sub(SAFE_UNDERSCORE, defang_links(text).translate(_SLACK_PROSE))
    text = _SLACK_MENTION.sub(SAFE_AT, text)
    return _truncate_escaped(_slack_entities(text), limit)


def slack_token(value: object, limit: int = 128) -> str:
    """A bare identifier for Chatbot fields that are not markdown (keywords, resource ids)."""
    text = _SLACK_MENTION.sub(SAFE_AT, " ".join(visible_controls(as_text(value)).split()))
    return truncate(text.replace("&", "").replace("<", "").replace(">", ""), limit)


def slack_block(value: object, limit: int) -> str:
    """Multi-line attacker text (document content) for the inside of a Slack code block
    (```...```): nothing in it can close the block, mention, link or be interpreted; at most
    `limit` characters."""
    text = visible_controls(defang_urls(as_text(value))).replace("`", SAFE_BACKTICK)
    return _truncate_escaped(_slack_entities(text), limit)
