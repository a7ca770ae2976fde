"""Findings for people at a terminal and for pipes: a table, a summary, JSON lines."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ssm_detect.findings import Finding, ResourceType, Severity
from ssm_detect.processing import Summary

_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFORMATIONAL: "dim",
}
JSONL_FIELDS = (
    "id",
    "detection_id",
    "title",
    "severity",
    "severity_reasons",
    "account_id",
    "region",
    "principal",
    "source_ip",
    "user_agent",
    "event_ids",
    "first_seen",
    "last_seen",
    "count",
    "resources",
    "context",
    "mitre",
    "references",
)


def finding_json(finding: Finding) -> str:
    return json.dumps(finding.model_dump(mode="json", include=set(JSONL_FIELDS)), sort_keys=True)


def findings_table(findings: Sequence[Finding]) -> Table:
    table = Table(title=f"{len(findings)} finding(s)", show_lines=False)
    for column in ("severity", "detection", "principal", "account", "time (UTC)", "instances"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        instances = [
            r.label or r.id for r in finding.resources if r.type is ResourceType.EC2_INSTANCE
        ]
        shown = ", ".join(instances[:3]) + (f" +{len(instances) - 3}" if len(instances) > 3 else "")
        # Text() renders attacker-influenced strings literally: no rich markup is interpreted.
        table.add_row(
            Text(finding.severity.value, style=_STYLE[finding.severity]),
            Text(finding.detection_id),
            Text(finding.principal.key),
            Text(finding.account_id),
            Text(finding.first_seen.strftime("%Y-%m-%d %H:%M:%S")),
            Text(shown or "-"),
        )
    return table


def summary_table(summary: Summary, files: int) -> Table:
    table = Table(title="summary", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("files read", files),
        ("events read", summary.events_seen),
        ("SSM events", summary.ssm_events),
        ("duplicate events skipped", summary.duplicates),
        ("bad input skipped", summary.bad_events),
        ("allowlisted", sum(summary.allowlisted.values())),
    ]
    rows += [(f"findings: {name}", count) for name, count in sorted(summary.findings.items())]
    for what, count in rows:
        table.add_row(what, str(count))
    return table


def print_report(
    console: Console, findings: Sequence[Finding], summary: Summary, files: int
) -> None:
    console.print(findings_table(findings))
    console.print(summary_table(summary, files))
