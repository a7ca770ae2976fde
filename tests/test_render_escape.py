"""render.escape: attacker-controlled text made safe for Slack (via Chatbot) and for email."""

from __future__ import annotations

import math
import re
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssm_detect.render.escape import (
    ASCII_ELLIPSIS,
    ELLIPSIS,
    EMPTY,
    as_text,
    ascii_line,
    defang_urls,
    email_block,
    email_line,
    one_line,
    slack_block,
    slack_code,
    slack_text,
    slack_token,
    truncate,
    visible_controls,
)

MENTIONS = ("<!channel>", "<!here>", "<!everyone>", "<@U123ABC>", "@here", "@channel", "@everyone")
# Characters no rendering may pass through raw: C0/C1 controls (\r, ESC), bidi overrides and
# isolates, zero-width characters, BOM, tag characters, lone surrogates.
UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ud800-\udfff\ufeff\U000e0000-\U000e007f]"
)
SLACK_MENTION = re.compile(r"<[!@#]|@(?:here|channel|everyone)\b|@\w")
SLACK_ENTITY_MENTION = re.compile(r"<[!@#]")
HOSTILE = (
    "<!channel> @here <@U123> `x` ```y``` *bold* _it_ ~s~ > quote "
    "<https://evil.example|click> [approve](https://evil.example/x) www.evil.example "
    "\x1b[31m\r\n\u202egnp.exe\u2066\u200b\ufeff\U000e0041 &amp; & < >"
)
# Unicode text, with the hostile characters over-represented.
hostile_text = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(list("<>&@`*_~|!#\r\n\t\x1b\u202e\u2066\u200b\ufeff:/.[]()")),
        st.sampled_from(["https://", "www.", "@here", "<!channel>", "&amp;", "&lt;"]),
    ),
    max_size=200,
).map("".join)


def inner(span: str) -> str:
    assert span.startswith("`")
    assert span.endswith("`")
    assert len(span) >= 2
    return span[1:-1]


def assert_slack_safe(text: str, *, code: bool = False) -> None:
    """Nothing Slack interprets. Inside code (`code`), Slack parses no mention, so a literal
    `@here` is inert there and kept (analysts copy addresses); `<!here>` forms never pass."""
    assert not UNSAFE.search(text)
    assert "<" not in text
    assert ">" not in text
    assert not (SLACK_ENTITY_MENTION if code else SLACK_MENTION).search(text)
    assert "https://" not in text.lower()
    assert "http://" not in text.lower()
    # Every & starts one of the three entities Slack knows: nothing half-escaped survives a cut.
    assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", text, flags=re.DOTALL)


@pytest.mark.parametrize("mention", MENTIONS)
def test_slack_code_keeps_every_mention_inert(mention: str) -> None:
    rendered = slack_code(f"hello {mention} team")

    assert_slack_safe(rendered, code=True)
    assert "hello" in rendered


def test_slack_code_and_block_keep_at_signs_so_iocs_can_be_copied() -> None:
    assert slack_code("mail bob@evil.example") == "`mail bob@evil.example`"
    assert "attacker@203.0.113.9" in slack_block("scp x attacker@203.0.113.9:/tmp", 200)


def test_slack_code_keeps_links_literal_and_defanged() -> None:
    rendered = slack_code("<https://evil.example|click> and [approve](https://evil.example/x)")

    assert_slack_safe(rendered)
    assert "hxxps://evil[.]example/x" in rendered
    assert "&lt;hxxps://evil[.]example|click&gt;" in rendered


def test_slack_code_backticks_cannot_close_the_span() -> None:
    rendered = slack_code("a`b ```c``` d")

    assert "`" not in inner(rendered)


def test_slack_code_is_one_line_and_bounded() -> None:
    rendered = slack_code("line one\r\nline two\nthree " + "x" * 1000, limit=50)

    assert "\n" not in rendered
    assert "\r" not in rendered
    assert len(rendered) <= 50
    assert inner(rendered).endswith(ELLIPSIS)


def test_slack_code_truncation_never_splits_an_entity() -> None:
    for prefix in range(10):
        rendered = slack_code("a" * prefix + "&" * 40, limit=20)
        assert_slack_safe(rendered)


def test_slack_code_empty_value_is_none_marker() -> None:
    assert slack_code(None) == EMPTY
    assert slack_code("  \n ") == EMPTY


def test_slack_text_neutralises_markdown_but_keeps_intraword_underscores() -> None:
    rendered = slack_text("*bold* _it_ ~strike~ `code` > quote AWSReservedSSO_Admin_1", 500)

    assert not re.search(r"[*~`>]", rendered)
    assert not re.search(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", rendered)
    assert "AWSReservedSSO_Admin_1" in rendered
    assert "bold" in rendered


@pytest.mark.parametrize("mention", MENTIONS)
def test_slack_text_and_token_break_mentions(mention: str) -> None:
    assert_slack_safe(slack_text(f"ping {mention}", 100))
    assert not SLACK_MENTION.search(slack_token(f"ping {mention}"))
    assert "<" not in slack_token(mention)


def test_slack_block_keeps_lines_but_nothing_interpretable() -> None:
    rendered = slack_block("line <!channel>\n```\nrm -rf / @here https://evil.example", 500)

    assert rendered.count("\n") == 2
    assert "`" not in rendered
    assert_slack_safe(rendered.replace("\n", " "), code=True)


def test_visible_controls_removes_invisible_and_control_characters_visibly() -> None:
    raw = "a\x1b[31mb\rc\u202ed\u2066e\u200bf\ufeffg\U000e0041h\ud800i\x00j"

    shown = visible_controls(raw)

    assert not UNSAFE.search(shown.replace("\n", ""))
    for escape in ("\\x1b", "\\u202e", "\\u2066", "\\u200b", "\\ufeff", "\\U000e0041", "\\x00"):
        assert escape in shown
    assert "\\ud800" in shown
    shown.encode("utf-8")  # a lone surrogate would make this raise


def test_visible_controls_normalises_line_breaks() -> None:
    assert visible_controls("a\r\nb\rc\u2028d") == "a\nb\nc\nd"


def test_email_line_is_plain_one_line_and_defanged() -> None:
    rendered = email_line("<!here>\r\nSubject: x\u202e https://evil.example/x", 200)

    assert "\n" not in rendered
    assert "\r" not in rendered
    assert not UNSAFE.search(rendered)
    assert "hxxps://evil[.]example/x" in rendered
    assert "<!here>" in rendered  # harmless in plain text, and what the analyst should see


def test_email_line_empty_is_none_marker() -> None:
    assert email_line(None, 10) == EMPTY


def test_email_block_keeps_lines_indents_and_reports_the_cut() -> None:
    rendered = email_block("one\r\ntwo\x1b\n\tthree https://evil.example\n" + "z" * 100, limit=60)

    lines = rendered.split("\n")
    assert lines[0] == "    one"
    assert lines[1] == "    two\\x1b"
    assert lines[2].startswith("        three hxxps://evil[.]example")
    assert lines[-1].startswith("    [")
    assert lines[-1].endswith("more characters not shown]")
    assert not UNSAFE.search(rendered)


def test_defang_urls_covers_schemes_and_www() -> None:
    assert defang_urls("HTTP://a.b/c?d=e.f") == "HxxP://a[.]b/c?d=e.f"
    assert defang_urls("ftp://files.example") == "fxp://files[.]example"
    assert defang_urls("see www.evil.example/x") == "see www[.]evil[.]example/x"
    assert defang_urls("Boto3/1.35.90 md/Botocore") == "Boto3/1.35.90 md/Botocore"


def test_truncate_states_its_bound() -> None:
    assert truncate("abcdef", 6) == "abcdef"
    assert truncate("abcdefg", 6) == "abcde" + ELLIPSIS
    with pytest.raises(ValueError, match="shorter than the marker"):
        truncate("abc", 2, marker="...")


def test_ascii_line_is_printable_ascii() -> None:
    rendered = ascii_line("Ünïcode\r\n\u202e<!channel> " + "é" * 200, 99)

    assert len(rendered) <= 99
    assert re.fullmatch(r"[ -~]*", rendered)
    assert rendered.endswith(ASCII_ELLIPSIS)
    assert rendered.startswith("Unicode")


def test_as_text_renders_context_values() -> None:
    assert as_text(None) == ""
    assert as_text(["a", 1]) == "a, 1"
    assert as_text({"b": 1, "a": [2]}) == '{"a": [2], "b": 1}'
    assert as_text(3) == "3"


@settings(max_examples=300, deadline=None)
@given(text=hostile_text, limit=st.integers(min_value=6, max_value=120))
def test_slack_code_property(text: str, limit: int) -> None:
    rendered = slack_code(text, limit)

    assert len(rendered) <= limit
    if rendered != EMPTY:
        assert "`" not in inner(rendered)
        assert "\n" not in rendered
        assert_slack_safe(rendered, code=True)


@settings(max_examples=300, deadline=None)
@given(text=hostile_text, limit=st.integers(min_value=1, max_value=120))
def test_email_line_and_one_line_property(text: str, limit: int) -> None:
    for rendered in (email_line(text, limit), one_line(text, limit)):
        assert len(rendered) <= max(limit, len(EMPTY))
        assert "\n" not in rendered
        assert not UNSAFE.search(rendered)


@settings(max_examples=200, deadline=None)
@given(text=hostile_text, limit=st.integers(min_value=3, max_value=200))
def test_slack_text_property(text: str, limit: int) -> None:
    rendered = slack_text(text, limit)

    assert len(rendered) <= limit
    assert_slack_safe(rendered)
    assert not re.search(r"[*~`]", rendered)


ADVERSARIAL = (
    HOSTILE * 2000,
    "_" * 300_000,
    "&" * 300_000,
    "@" * 300_000,
    "https://" + "." * 300_000,
    "www." * 75_000,
    "\u202e" * 300_000,
    " \n" * 150_000,
    "h" * 300_000,
)


def _render_all(text: str) -> tuple[dict[int, str], str]:
    bounded = {
        200: slack_code(text, 200),
        3000: slack_text(text, 3000),
        128: slack_token(text),
        600: slack_block(text, 600),
        300: email_line(text, 300),
        99: ascii_line(text, 99),
        301: one_line(text, 301),
    }
    return bounded, email_block(text, 10_000)


def _cpu_seconds(text: str) -> float:
    """This thread's CPU time for every helper on `text`, best of 3. CPU time, not wall time:
    other processes on a busy machine do not count."""
    best = math.inf
    for _ in range(3):
        started = time.thread_time()
        _render_all(text)
        best = min(best, time.thread_time() - started)
    return best


@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda t: repr(t[:12]))
def test_helpers_bound_300_kb_of_hostile_text(text: str) -> None:
    assert len(text) >= 300_000
    bounded, block = _render_all(text)

    assert all(len(rendered) <= limit for limit, rendered in bounded.items())
    # email_block bounds the shown source; defanging at most triples it (`.` -> `[.]`), each
    # shown line adds its indent, plus one note line.
    assert len(block) <= 3 * 10_000 + 5 * (block.count("\n") + 1) + 60


@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda t: repr(t[:12]))
def test_helpers_take_time_linear_in_the_input(text: str) -> None:
    """A size-scaling check instead of a time limit: four times the input may cost about four
    times the CPU, never the sixteen times of a quadratic pass (a backtracking pattern costs
    far more). The 10 ms term absorbs the timer's noise on the cheapest inputs."""
    quarter = text[: len(text) // 4]
    small, large = _cpu_seconds(quarter), _cpu_seconds(text)
    assert large <= 8 * small + 0.010, (small, large)


def _neutralised_set() -> set[str]:
    """Independently of the implementation: the characters a reader must never get raw."""
    categories = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}
    blank_or_selector = {
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
        *range(0x180B, 0x1810),
        0x034F,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        0x2800,
        0x3164,
        0xFFA0,
    }
    return {
        chr(code)
        for code in range(0x110000)
        if code not in (0x09, 0x0A)
        and (code in blank_or_selector or unicodedata.category(chr(code)) in categories)
    }


NEUTRALISED = _neutralised_set()


def test_every_code_point_of_the_unsafe_categories_is_made_visible() -> None:
    """All of Unicode, in chunks: no Cc/Cf/Co/Cn/Cs/Zl/Zp character, variation selector or
    blank-looking filler survives; every other character passes unchanged."""
    escape = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")
    for start in range(0, 0x110000, 0x10000):
        # \r\n is one line break and a backslash would blur the escapes: both tested elsewhere.
        codes = (c for c in range(start, start + 0x10000) if c not in (0x0D, 0x5C))
        chunk = "".join(chr(code) for code in codes)
        rendered = visible_controls(chunk)
        assert not NEUTRALISED.intersection(rendered), hex(start)
        # Everything else passes unchanged: without the escapes, the rest is back, in order.
        kept = "".join(ch for ch in chunk if ch not in NEUTRALISED)
        assert escape.sub("", rendered).replace("\n", "") == kept.replace("\n", ""), hex(start)


@pytest.mark.parametrize(
    "code",
    [0xFE00, 0xFE0F, 0xE0100, 0xE01EF, 0x3164, 0xFFA0, 0x2800, 0x180B, 0x180E, 0x115F, 0x034F],
)
def test_the_reported_invisible_characters_are_escaped_everywhere(code: int) -> None:
    hidden = f"value{chr(code)}end"
    escaped = f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    for rendered in (
        visible_controls(hidden),
        email_line(hidden, 100),
        slack_code(hidden),
        slack_text(hidden, 100),
        slack_block(hidden, 100),
        email_block(hidden),
    ):
        assert chr(code) not in rendered
        assert escaped in rendered


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=st.characters(codec=None), max_size=100))
def test_no_unsafe_character_survives_any_helper(text: str) -> None:
    for rendered in (
        email_line(text, 400),
        email_block(text),
        slack_code(text, 400),
        slack_text(text, 400),
        slack_block(text, 400),
        slack_token(text, 400),
    ):
        assert not NEUTRALISED.intersection(rendered)


@pytest.mark.parametrize(
    ("raw", "linkable", "defanged"),
    [
        ("\\\\203.0.113.9\\share\\x.exe", "\\\\203", "[\\\\]203[.]0[.]113[.]9\\share"),
        ("open evil.example/payload.sh", "evil.example", "evil[.]example/payload[.]sh"),
        ("see evil.example now", "evil.example", "evil[.]example"),
        ("get 203.0.113.9/x.exe", "203.0.113.9/", "203[.]0[.]113[.]9/x[.]exe"),
        ("203.0.113.9:8080 listener", "203.0.113.9:", "203[.]0[.]113[.]9:8080"),
        ("https:/evil.example", "https:", "hxxps:/evil[.]example"),
        ("HTTP:\\\\evil", "HTTP:", "HxxP:[\\\\]evil"),
        ("https://evil.example/x", "https://", "hxxps://evil[.]example/x"),
        ("mail user@evil now", "user@evil", "user[@]evil"),
        ("javascript:alert(1)", "javascript:", "javascript[:]alert(1)"),
        ("data:text/html;base64,PHNjcmlwdD4=", "data:", "data[:]text/html"),
        ("mailto:ceo@evil.example", "mailto:", "mailto[:]ceo[@]evil[.]example"),
        ("file:///etc/passwd", "file:", "file[:]///etc/passwd"),
        ("www.evil.example", "www.evil", "www[.]evil[.]example"),
        ("evil\u200b.example/x", "evil.example", "\\u200b[.]example"),
    ],
)
def test_email_defangs_every_form_a_mail_client_links(
    raw: str, linkable: str, defanged: str
) -> None:
    for rendered in (email_line(raw, 200), email_block(raw)):
        assert linkable not in rendered
        assert defanged in rendered


def test_email_keeps_version_numbers_and_dotted_ids_readable() -> None:
    assert email_line("Boto3/1.35.90 python#3.12.8 i-0abc 10.0.0.1", 200) == (
        "Boto3/1.35.90 python#3.12.8 i-0abc 10.0.0.1"
    )
