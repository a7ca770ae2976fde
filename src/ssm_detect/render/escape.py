"""Make attacker-controlled text safe to show: in Slack (via AWS Chatbot), in plain-text email.

Document names, session names, user agents, comments and document content are chosen by whoever
made the API call. Rendered as they are, they could ping a whole Slack channel (`<!channel>`,
`@here`), plant a clickable link (`<https://evil|click>`, `[approve](https://evil)`), restyle the
message with markdown, hide text with right-to-left overrides or zero-width characters, or rewrite
a terminal with escape sequences.

What the helpers guarantee (each is a single linear pass, so 300 KB of input costs milliseconds):

- `visible_controls`: no control, bidi-override, zero-width or tag character survives. Each is
  replaced by its escape (`\\u202e`, `\\x1b`): removed from the text, yet still visible to the
  analyst, for whom a hidden override is itself evidence.
- `defang_urls`: `https://evil.example/x` becomes `hxxps://evil[.]example/x`, the convention
  analysts already read, so no mail client or chat app turns it into a link.
- `truncate` / `one_line`: at most `limit` characters, ending in the ellipsis marker when cut.
- `slack_code`: one Slack inline-code span, at most `limit` characters including both backticks.
  Inside a code span Slack applies no formatting and links nothing; `&`, `<` and `>` are
  entity-escaped as Slack requires (so `<!channel>`, `<@U123>` and `<url|text>` stay literal),
  backticks that would close the span become U+02CB (modifier letter grave accent) and `@`
  before a word becomes U+FF20 (fullwidth commercial at), so `@here`, `@channel` and
  `@everyone` cannot notify anyone.
- `slack_text`: the same for prose outside code spans; markdown control characters are swapped
  for look-alikes (`*` -> U+2217, `~` -> U+223C, a word-boundary `_` -> U+FF3F), so nothing is
  restyled.
- `email_line` / `email_block`: plain text for email, one line or many, with controls made
  visible and URLs defanged; `ascii_line` for headers that must be ASCII (the SNS subject).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence

ELLIPSIS = "…"
ASCII_ELLIPSIS = "..."
EMPTY = "(none)"

# C0 controls except tab and newline (so \r and ESC are included), DEL, C1 controls; the soft
# hyphen; Arabic letter mark; zero-width space/non-joiner/joiner, LRM/RLM; line and paragraph
# separators are handled as newlines before this runs. Bidi embeddings and overrides
# (U+202A-U+202E), word joiner and invisible operators (U+2060-U+2064), bidi isolates
# (U+2066-U+2069), deprecated format controls (U+206A-U+206F), lone surrogates (which JSON
# input can carry and UTF-8 cannot encode), the BOM / zero-width no-break space, interlinear
# annotations (U+FFF9-U+FFFB) and tag characters (U+E0000-U+E007F, used to smuggle invisible
# ASCII).
_UNSAFE_RANGES = (
    (0x00, 0x08),
    (0x0B, 0x1F),
    (0x7F, 0x9F),
    (0xAD, 0xAD),
    (0x061C, 0x061C),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0xE0000, 0xE007F),
)
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


# One table lookup per character (str.translate runs in C): 300 KB of hostile text in
# milliseconds, where a regex callback per match would take most of a second.
_VISIBLE = {code: _escape(code) for low, high in _UNSAFE_RANGES for code in range(low, high + 1)}


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
    """An attacker-controlled value for one line of a plain-text email."""
    text = one_line(defang_urls(as_text(value)), limit)
    return text or EMPTY


def email_block(value: object, limit: int | None = None, indent: str = "    ") -> str:
    """Attacker-controlled multi-line text (document content) for a plain-text email.

    At most `limit` characters (after escaping; None: all) are shown, each line indented; a cut
    block ends with a line saying how much was left out.
    """
    text = visible_controls(defang_urls(as_text(value))).expandtabs(4)
    shown = text if limit is None or len(text) <= limit else text[:limit]
    lines = [indent + line.rstrip() for line in shown.split("\n")]
    if limit is not None and len(text) > limit:
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
    text = _SLACK_MENTION.sub(SAFE_AT, defang_urls(text).replace("`", SAFE_BACKTICK))
    return f"`{_truncate_escaped(_slack_entities(text), limit - 2)}`"


def slack_text(value: object, limit: int) -> str:
    """Prose for Slack client-markdown (outside code spans), at most `limit` characters.

    Meant for our own text (titles, runbooks) as defence in depth; attacker values belong in
    `slack_code`.
    """
    text = " ".join(visible_controls(as_text(value)).split())
    text = _BOUNDARY_UNDERSCORE.sub(SAFE_UNDERSCORE, defang_urls(text).translate(_SLACK_PROSE))
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
    return _truncate_escaped(_slack_entities(_SLACK_MENTION.sub(SAFE_AT, text)), limit)
