"""Findings for people at a terminal and for pipes: a table, a summary, JSON lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ssm_detect.findings import Finding, PrincipalRef, ResourceType, Severity
from ssm_detect.processing import Summary

_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFORMATIONAL: "dim",
}
_SHORT_SEVERITY = {Severity.INFORMATIONAL: "INFO"}
_DETECTION_PREFIX = "AWS.SSM."
_SSO_ROLE_PREFIX = "AWSReservedSSO_"
_SSO_ROLE_PATH = ("aws-reserved", "sso.amazonaws.com")
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


@dataclass(frozen=True)
class RunFacts:
    """What the summary says beyond the pipeline's counters."""

    files: int
    problems_listed: int = 0
    problems_unlisted: int = 0


def finding_json(finding: Finding) -> str:
    return json.dumps(finding.model_dump(mode="json", include=set(JSONL_FIELDS)), sort_keys=True)


def short_detection(detection_id: str) -> str:
    """`AWS.SSM.SendCommand` -> `SendCommand`: every detection here shares the prefix."""
    return detection_id.removeprefix(_DETECTION_PREFIX)


def short_principal(principal: PrincipalRef) -> str:
    """The principal key without what the account column already says.

    `arn:aws:iam::111122223333:role/PlatformOps` -> `role/PlatformOps`; an Identity Center
    permission set's role, `role/aws-reserved/sso.amazonaws.com/<region>/AWSReservedSSO_<set>_<id>`
    followed by the person -> `sso/<set>/<person>`. Keys that are not ARNs
    (`service:ssm.amazonaws.com`) are shown as they are."""
    key = principal.key
    if not key.startswith("arn:"):
        return key
    resource = key.split(":", 5)[-1]
    parts = resource.split("/")
    if parts[:3] == ["role", *_SSO_ROLE_PATH] and len(parts) > 4:
        return "/".join(["sso", _permission_set(parts[4]), *parts[5:]])
    if len(parts) > 1 and parts[0] == "role" and parts[1].startswith(_SSO_ROLE_PREFIX):
        return "/".join(["sso", _permission_set(parts[1]), *parts[2:]])
    return resource


def _permission_set(role_name: str) -> str:
    """`AWSReservedSSO_PowerUserAccess_9a8b7c6d5e4f3a2b` -> `PowerUserAccess`."""
    if not role_name.startswith(_SSO_ROLE_PREFIX):
        return role_name
    return role_name.removeprefix(_SSO_ROLE_PREFIX).rsplit("_", 1)[0]


@dataclass(frozen=True)
class _Column:
    header: str
    cell: Callable[[Finding], Text]
    optional: bool = False
    """Left out on a terminal too narrow for it (the JSON lines output has everything)."""


_COLUMNS = (
    _Column(
        "severity",
        lambda f: Text(_SHORT_SEVERITY.get(f.severity, f.severity.value), style=_STYLE[f.severity]),
    ),
    _Column("detection", lambda f: Text(short_detection(f.detection_id))),
    _Column("principal", lambda f: Text(short_principal(f.principal))),
    _Column("account", lambda f: Text(f.account_id)),
    _Column("first seen (UTC)", lambda f: Text(f.first_seen.strftime("%Y-%m-%d %H:%M"))),
    _Column("n", lambda f: Text(str(f.count)), optional=True),
    _Column("instances", lambda f: Text(_instances(f)), optional=True),
)
_PRINCIPAL = "principal"
_PRINCIPAL_MIN_WIDTH = 20
_CELL_PADDING = 2


def findings_table(findings: Sequence[Finding], width: int = 200) -> Table:
    """One row per finding. The principal is what an analyst reads first: it takes the spare
    width and folds; every other column keeps one line, and optional ones are left out
    rather than squeezing the principal out of a narrow terminal (rich would)."""
    # Text() renders attacker-influenced strings literally: no rich markup is interpreted.
    cells = {c.header: [c.cell(f) for f in findings] for c in _COLUMNS}
    columns = _fitting_columns(cells, width)
    table = Table(
        title=f"{len(findings)} finding(s)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    for column in columns:
        if column.header == _PRINCIPAL:
            table.add_column(column.header, overflow="fold", min_width=_PRINCIPAL_MIN_WIDTH)
        else:
            table.add_column(column.header, no_wrap=True, overflow="ellipsis")
    for row in range(len(findings)):
        table.add_row(*(cells[column.header][row] for column in columns))
    return table


def _fitting_columns(cells: dict[str, list[Text]], width: int) -> list[_Column]:
    def natural(column: _Column) -> int:
        longest = max((cell.cell_len for cell in cells[column.header]), default=0)
        return max(longest, len(column.header)) + _CELL_PADDING

    columns = list(_COLUMNS)
    for dropped in reversed([c for c in _COLUMNS if c.optional]):
        fixed = sum(natural(c) for c in columns if c.header != _PRINCIPAL)
        if fixed + _PRINCIPAL_MIN_WIDTH + _CELL_PADDING <= width:
            break
        columns.remove(dropped)
    return columns


def summary_table(summary: Summary, facts: RunFacts) -> Table:
    table = Table(title="summary", show_header=False, box=box.SIMPLE, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("files read", facts.files),
        ("events read", summary.events_seen),
        ("ignored (other services, SSM calls no detection reads)", summary.ignored),
        ("SSM events processed", summary.ssm_events),
        ("duplicate events skipped", summary.duplicates),
        ("bad input skipped", summary.bad_events),
        ("allowlisted", sum(summary.allowlisted.values())),
        ("notified", summary.notified),
        ("suppressed (joined an open finding)", summary.suppressed),
    ]
    rows += [
        (f"firings: {short_detection(name)}", count)
        for name, count in sorted(summary.findings.items())
    ]
    for what, count in rows:
        table.add_row(what, str(count))
    return table


def print_report(
    console: Console, findings: Sequence[Finding], summary: Summary, facts: RunFacts
) -> None:
    console.print(findings_table(findings, console.width))
    console.print(summary_table(summary, facts))
    if facts.problems_listed or facts.problems_unlisted:
        shown = facts.problems_listed + facts.problems_unlisted
        console.print(
            Text(f"{shown} bad input(s) skipped: listed on stderr (`skipped:` lines)", "yellow")
        )


def _instances(finding: Finding) -> str:
    """The first instance and how many more: ids do not fold, and the JSON lines list them all."""
    kinds = (ResourceType.EC2_INSTANCE, ResourceType.MANAGED_INSTANCE)
    instances = [r.label or r.id for r in finding.resources if r.type in kinds]
    if not instances:
        return "-"
    return instances[0] + (f" +{len(instances) - 1}" if len(instances) > 1 else "")


class RichProgress:
    """`ReplayProgress` as a rich progress bar on stderr, one bar per phase, cleared at the end
    so the table starts on a clean screen."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._total = 0

    @classmethod
    @contextmanager
    def on_stderr(cls) -> Iterator[RichProgress]:
        columns = (
            TextColumn("{task.description:<10}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
        )
        # No redirection: rich would send what the replay prints to stdout (JSON lines) to the
        # progress bar's stream, stderr.
        with Progress(
            *columns,
            console=Console(stderr=True),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as progress:
            yield cls(progress)

    def phase(self, description: str, total: int) -> None:
        if self._task is not None:
            # The previous phase is over even if its estimate was high (duplicates, bad input).
            self._progress.update(self._task, completed=self._total)
        self._task = self._progress.add_task(description, total=total)
        self._total = total

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)
