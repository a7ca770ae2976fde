"""`ssm-detect`: replay CloudTrail files locally, seed a deployment's history, or run the real
Lambda handler on one event."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ssm_detect.event_names import DETECTED_EVENT_NAMES
from ssm_detect.replay.progress import NoProgress, ReplayProgress

# The record models (and pydantic) are imported by the commands that use them, not here: a
# parallel replay's fork server imports this module, the `ssm-detect` script's (replay/engine.py).
if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from ssm_detect.findings import Finding
    from ssm_detect.replay.engine import Intake
    from ssm_detect.replay.sources import SourceItem
    from ssm_detect.settings import Settings
    from ssm_detect.state import StateStore

DEFAULT_SORT_BUFFER_MB = 64
# The SSM calls any detection reads: the readers' prefilter and the Athena query leave the other
# SSM records out unparsed (replay/prefilter.py), as the EventBridge rules leave them out of the
# Lambda. They would be parsed only to be judged by no detection.
REPLAYED_EVENT_NAMES = frozenset(DETECTED_EVENT_NAMES)
_FILE_TABLE_WIDTH = 160

EXIT_FAILURE = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except UsageError as error:
        sys.stderr.write(f"ssm-detect: {error}\n")
        return EXIT_USAGE
    except CommandFailedError as error:
        sys.stderr.write(f"ssm-detect: {error}\n")
        return EXIT_FAILURE


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit code 2."""


class CommandFailedError(Exception):
    """The command could not finish (e.g. AWS refused a call): one line, exit code 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssm-detect", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    replay = commands.add_parser("replay", help="replay CloudTrail files through the detections")
    replay.add_argument(
        "paths", nargs="*", help="files or folders (recursive), or s3://BUCKET/PREFIX of a trail"
    )
    replay.add_argument("--state", type=Path, help="SQLite file that keeps state across runs")
    replay.add_argument("--output", choices=("table", "jsonl"), help="default: table on a tty")
    _reading_options(replay)
    _where_options(replay)
    replay.add_argument("--region", help="AWS region of the S3 bucket or of Athena")
    _settings_options(replay)
    replay.set_defaults(command=_replay)

    seed = commands.add_parser(
        "seed-history",
        help="fill a state store from past CloudTrail so a new deployment knows its principals",
        description="Applies the detections' state updates only: no findings, no ledger.",
    )
    seed.add_argument(
        "paths", nargs="*", help="files or folders (recursive), or s3://BUCKET/PREFIX of a trail"
    )
    target = seed.add_mutually_exclusive_group(required=True)
    target.add_argument("--state", type=Path, help="SQLite state file (as `replay --state`)")
    target.add_argument("--table", help="the deployed stack's DynamoDB state table")
    seed.add_argument("--region", help="AWS region of the table and of LookupEvents")
    seed.add_argument("--endpoint-url", help="DynamoDB endpoint (e.g. DynamoDB Local)")
    seed.add_argument(
        "--from-lookup-events",
        action="store_true",
        help="read the CloudTrail LookupEvents API (last 90 days, one region) instead of files",
    )
    seed.add_argument(
        "--days",
        type=float,
        help="with --from-lookup-events: how far back (default: the history window)",
    )
    _reading_options(seed)
    _where_options(seed)
    _settings_options(seed)
    seed.set_defaults(command=_seed_history)

    cover = commands.add_parser(
        "coverage",
        help="which accounts and regions are watched (heartbeats) and which are not",
        description="Exit code 1 if any expected account/region is silent or unwatched.",
    )
    cover.add_argument("--table", required=True, help="the deployed stack's DynamoDB state table")
    cover.add_argument("--region", help="AWS region of the table")
    cover.add_argument("--endpoint-url", help="DynamoDB endpoint (e.g. DynamoDB Local)")
    expected = cover.add_mutually_exclusive_group()
    expected.add_argument(
        "--expected", type=Path, help='JSON file: {"ACCOUNT": ["REGION", ...], ...}'
    )
    expected.add_argument(
        "--organization",
        action="store_true",
        help="every enabled region of every active account (Organizations, account:ListRegions)",
    )
    cover.add_argument(
        "--exclude-region",
        action="append",
        default=[],
        help="a region an SCP denies (repeatable): not expected anywhere",
    )
    cover.add_argument("--limit-minutes", type=float, default=60, help="the silence limit")
    cover.set_defaults(command=_coverage)

    invoke = commands.add_parser("invoke", help="run the real Lambda handler on one event file")
    invoke.add_argument("event", type=Path)
    invoke.add_argument(
        "--endpoint-url", help="DynamoDB endpoint (e.g. DynamoDB Local); default: in-process moto"
    )
    invoke.add_argument("--table", default="ssm-detect-local", help="state table name")
    invoke.set_defaults(command=_invoke)
    return parser


def _reading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes reading files side by side (default: the CPUs); the result is the same",
    )
    parser.add_argument(
        "--sort-buffer-mb",
        type=int,
        default=DEFAULT_SORT_BUFFER_MB,
        help="memory for ordering SSM events before sorted runs spill to temporary files",
    )


def _where_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "CloudTrail where it lives (docs/backtest.md): an S3 trail bucket or Athena"
    )
    group.add_argument("--start", type=_moment, help="ISO-8601 time; events from then on")
    group.add_argument("--end", type=_moment, help="ISO-8601 time; events before then")
    group.add_argument("--athena", metavar="DATABASE.TABLE", help="the trail's Athena table")
    group.add_argument("--workgroup", help="Athena workgroup (default: the account's primary)")
    group.add_argument("--athena-output", help="s3:// location for the query's results")
    group.add_argument(
        "--partition-column", default="timestamp", help="the table's date partition column"
    )
    group.add_argument(
        "--checkpoint", type=Path, help="S3: a file of finished objects; re-run to resume"
    )
    group.add_argument(
        "--fetchers", type=int, default=16, help="S3: objects fetched at once (default 16)"
    )


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _settings_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detection settings (defaults: the Lambda's environment)")
    group.add_argument("--history-days", type=float)
    group.add_argument("--fanout-threshold", type=int)
    group.add_argument("--fanout-window-minutes", type=float)
    from ssm_detect.principal import PrincipalKeying  # noqa: PLC0415 - see the imports

    group.add_argument("--principal-keying", choices=[k.value for k in PrincipalKeying])
    group.add_argument("--include-service-principals", action="store_true", default=None)


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment variables (as in Lambda) first, then command-line options on top."""
    env = dict(os.environ)
    options = {
        "HISTORY_WINDOW_DAYS": args.history_days,
        "FANOUT_THRESHOLD": args.fanout_threshold,
        "FANOUT_WINDOW_MINUTES": args.fanout_window_minutes,
        "PRINCIPAL_KEYING": args.principal_keying,
        "INCLUDE_SERVICE_PRINCIPALS": args.include_service_principals,
    }
    env.update({name: str(value) for name, value in options.items() if value is not None})
    from ssm_detect.settings import Settings  # noqa: PLC0415 - see the imports

    try:
        return Settings.from_env(env)
    except ValueError as error:
        raise UsageError(f"invalid settings: {error}") from error


def _replay(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415 - only the CLI needs rich

    from ssm_detect.render.local import RunFacts, print_report  # noqa: PLC0415
    from ssm_detect.replay.engine import detect, replay  # noqa: PLC0415
    from ssm_detect.wiring import local_runtime  # noqa: PLC0415

    where = _where(args)
    settings = settings_from(args)
    try:
        wired = local_runtime(settings, args.state)
    except sqlite3.Error as error:
        raise UsageError(f"cannot open state file {args.state}: {error}") from error
    output = args.output or ("table" if sys.stdout.isatty() else "jsonl")
    # JSON lines go out as each finding becomes final: nothing accumulates.
    on_final = _write_finding_json if output == "jsonl" else None
    with _progress() as progress:
        if where == "files":
            result = replay(
                [Path(p) for p in args.paths],
                wired.pipeline,
                wired.dispatcher,
                progress=progress,
                max_held_bytes=_sort_buffer_bytes(args),
                jobs=_jobs(args),
                event_names=REPLAYED_EVENT_NAMES,
                window=_window(args),
                on_final=on_final,
            )
        else:
            intake, files = _read_remote(args, settings, where)
            result = detect(
                intake,
                files,
                wired.pipeline,
                wired.dispatcher,
                progress=progress,
                on_final=on_final,
            )
    note = _redelivery_bound_note(result.oldest_event)
    if output == "jsonl":
        summary = result.summary.as_dict() | {"files": result.files}
        if note:
            summary["note"] = note
        sys.stderr.write(json.dumps(summary) + "\n")
    else:
        facts = RunFacts(result.files, len(result.problems), result.unlisted_problems)
        console = Console()
        if not console.is_terminal and "COLUMNS" not in os.environ:
            # A table saved to a file is not bound by anyone's terminal: don't fold it to 80.
            console = Console(width=_FILE_TABLE_WIDTH)
        print_report(console, result.findings, result.summary, facts)
    _report_problems(result.problems, result.unlisted_problems)
    if note and output != "jsonl":
        sys.stderr.write(f"note: {note}\n")
    return 0


def _redelivery_bound_note(oldest: datetime | None) -> str | None:
    """Say when the input is older than what the deployed detector's ledger remembers: such
    events redriven to the function (from its failure queues, or re-sent) can notify again."""
    from ssm_detect.ledger.base import RETENTION  # noqa: PLC0415

    if oldest is None or datetime.now(UTC) - oldest <= RETENTION:
        return None
    days = RETENTION // timedelta(days=1)
    return (
        f"events from {oldest:%Y-%m-%d %H:%M} UTC are older than the deployed detector's "
        f"redelivery bound ({days} days): its ledger keeps a window's notifications that long "
        "after the window's last firing, so sending these events to the function again (a "
        "redrive from its failure queues) may notify them a second time. This replay itself "
        "notifies nothing."
    )


def _where(args: argparse.Namespace) -> str:
    """`files`, `s3` or `athena`, after checking the options go together."""
    urls = [p for p in args.paths if p.startswith("s3://")]
    if args.athena:
        if args.paths:
            raise UsageError("--athena reads the table: give no files or s3:// URLs with it")
        where = "athena"
    elif urls:
        if len(urls) != len(args.paths):
            raise UsageError("give s3:// URLs or local files and folders, not both")
        where = "s3"
    else:
        where = "files"
        _require_paths([Path(p) for p in args.paths])
    if where != "files" and (args.start is None or args.end is None):
        raise UsageError(f"reading from {where} needs --start and --end")
    if args.start is not None and args.end is not None and args.start >= args.end:
        raise UsageError("--start must be before --end")
    if args.fetchers < 1:
        raise UsageError("--fetchers must be at least 1")
    return where


def _status_line(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _window(args: argparse.Namespace) -> tuple[datetime, datetime] | None:
    if args.start is None and args.end is None:
        return None
    return (
        args.start or datetime(1970, 1, 1, tzinfo=UTC),
        args.end or datetime(9999, 1, 1, tzinfo=UTC),
    )


def _read_remote(args: argparse.Namespace, settings: Settings, where: str) -> tuple[Intake, int]:
    """An S3 prefix or an Athena query read into an Intake; AWS errors in one line."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from ssm_detect.replay import remote  # noqa: PLC0415
    from ssm_detect.replay.athena import AthenaQueryFailedError  # noqa: PLC0415

    window = (args.start, args.end)
    status = _status_line if sys.stderr.isatty() else None
    buffer = _sort_buffer_bytes(args)
    keying = settings.principal_keying
    try:
        if where == "athena":
            options = remote.AthenaOptions(
                args.workgroup, args.athena_output, args.partition_column, args.region
            )
            intake, _ = remote.read_athena(
                args.athena,
                keying,
                window,
                options,
                max_held_bytes=buffer,
                event_names=REPLAYED_EVENT_NAMES,
                status=status,
            )
            return intake, 0
        s3_options = remote.S3Options(args.fetchers, args.checkpoint, args.region)
        return remote.read_s3(
            args.paths,
            keying,
            window,
            s3_options,
            max_held_bytes=buffer,
            event_names=REPLAYED_EVENT_NAMES,
            status=status,
        )
    except ValueError as error:
        raise UsageError(str(error)) from error
    except (BotoCoreError, ClientError, AthenaQueryFailedError, OSError) as error:
        resume = " (re-run with the same --checkpoint to resume)" if args.checkpoint else ""
        raise CommandFailedError(f"reading {where} failed{resume}: {error}") from error


def _write_finding_json(finding: Finding) -> None:
    from ssm_detect.render.local import finding_json  # noqa: PLC0415

    sys.stdout.write(finding_json(finding) + "\n")


def _seed_history(args: argparse.Namespace) -> int:
    from ssm_detect.render.local import short_detection  # noqa: PLC0415
    from ssm_detect.replay.engine import Intake, read_inputs  # noqa: PLC0415
    from ssm_detect.seeding import seed_history  # noqa: PLC0415
    from ssm_detect.wiring import local_pipeline  # noqa: PLC0415

    settings = settings_from(args)
    window = _lookup_window(args, settings)
    where = _where(args) if window is None else "lookup"
    buffer = _sort_buffer_bytes(args)
    store, target = _seed_store(args)
    try:
        with _progress() as progress:
            if window is not None:
                intake = Intake(settings.principal_keying, max_held_bytes=buffer)
                intake.add(_lookup_records(args.region, window))
                source = "CloudTrail LookupEvents"
            elif where == "files":
                intake, files = read_inputs(
                    [Path(p) for p in args.paths],
                    settings.principal_keying,
                    progress=progress,
                    max_held_bytes=buffer,
                    jobs=_jobs(args),
                    event_names=REPLAYED_EVENT_NAMES,
                    window=_window(args),
                )
                source = f"{files} file(s)"
            else:
                intake, files = _read_remote(args, settings, where)
                source = f"{files} S3 object(s)" if where == "s3" else f"Athena {args.athena}"
            progress.phase("seeding", intake.held)
            report = seed_history(intake.events(progress), local_pipeline(settings, store))
    except _aws_errors() as error:
        # Unions are idempotent: what was written stays valid, and running again is safe.
        raise CommandFailedError(f"AWS error while seeding (safe to re-run): {error}") from error
    summary = intake.summary
    items = ", ".join(
        f"{short_detection(name)} {count}" for name, count in sorted(report.items.items())
    )
    sys.stdout.write(
        f"read {summary.events_seen} events from {source}: {report.events} SSM, "
        f"{summary.ignored} ignored (other services, SSM calls no detection reads), "
        f"{summary.duplicates} duplicates, "
        f"{summary.bad_events} bad input skipped\n"
        f"applied {report.updates} state updates: {len(report.principals)} principal(s) "
        f"seeded into {target}" + (f" (state items: {items})" if items else "") + "\n"
        "no findings, nothing notified\n"
    )
    _report_problems(intake.problems.lines, intake.problems.unlisted)
    return 0


def _lookup_window(
    args: argparse.Namespace, settings: Settings
) -> tuple[datetime, datetime] | None:
    """The LookupEvents time range, or None when seeding from files; checks the options."""
    from ssm_detect.replay.lookup import MAX_LOOKBACK_DAYS  # noqa: PLC0415

    if args.from_lookup_events == bool(args.paths or args.athena):
        raise UsageError(
            "give CloudTrail files or folders, s3:// URLs or --athena, or --from-lookup-events"
            " (one of them)"
        )
    if not args.from_lookup_events:
        if args.days is not None:
            raise UsageError("--days goes with --from-lookup-events")
        return None
    days = args.days if args.days is not None else settings.history_window / timedelta(days=1)
    if not 0 < days <= MAX_LOOKBACK_DAYS:
        raise UsageError(f"--days must be more than 0 and at most {MAX_LOOKBACK_DAYS}")
    # The wall clock is right here: LookupEvents keeps the last 90 days *from now*.
    end = datetime.now(UTC)
    return end - timedelta(days=days), end


def _lookup_records(region: str | None, window: tuple[datetime, datetime]) -> Iterator[SourceItem]:
    from ssm_detect.replay import lookup  # noqa: PLC0415

    return lookup.lookup_records(lookup.cloudtrail_client(region), *window)


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    return BotoCoreError, ClientError


def _coverage(args: argparse.Namespace) -> int:
    import boto3  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from ssm_detect.coverage import (  # noqa: PLC0415
        coverage,
        expected_from_file,
        expected_from_organization,
    )
    from ssm_detect.heartbeat_dynamodb import DynamoDbHeartbeats  # noqa: PLC0415

    try:
        expected = None
        if args.expected is not None:
            expected = expected_from_file(args.expected)
        elif args.organization:
            own = boto3.client("sts").get_caller_identity()["Account"]
            expected = expected_from_organization(
                boto3.client("organizations"), boto3.client("account"), own
            )
        if expected is not None:
            expected = [s for s in expected if s.region not in set(args.exclude_region)]
        store = DynamoDbHeartbeats(_dynamodb_client(args.region, args.endpoint_url), args.table)
        result = coverage(
            store.latest(),
            expected,
            datetime.now(UTC),
            timedelta(minutes=args.limit_minutes),
        )
    except (OSError, ValueError) as error:
        raise UsageError(str(error)) from error
    except (BotoCoreError, ClientError) as error:
        raise CommandFailedError(f"AWS refused: {error}") from error
    sys.stdout.write("\n".join(result.lines()) + "\n")
    return 0 if result.complete else EXIT_FAILURE


def _seed_store(args: argparse.Namespace) -> tuple[StateStore, str]:
    """The store to seed and how to name it: a SQLite file, or a deployed DynamoDB table."""
    if args.state is not None:
        from ssm_detect.state.sqlite import SqliteStateStore  # noqa: PLC0415

        try:
            return SqliteStateStore(args.state), str(args.state)
        except sqlite3.Error as error:
            raise UsageError(f"cannot open state file {args.state}: {error}") from error
    from ssm_detect.state.dynamodb import DynamoDbStateStore  # noqa: PLC0415

    client = _dynamodb_client(args.region, args.endpoint_url)
    _require_table(client, args.table)
    return DynamoDbStateStore(client, args.table), f"DynamoDB table {args.table}"


def _dynamodb_client(region: str | None, endpoint_url: str | None) -> DynamoDBClient:
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(retries={"mode": "standard", "max_attempts": 4})
    return boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url, config=config)


def _require_table(client: DynamoDBClient, table: str) -> None:
    """Fail in one line before reading anything when the table or credentials are wrong."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        client.describe_table(TableName=table)
    except client.exceptions.ResourceNotFoundException as error:
        raise UsageError(f"no DynamoDB table {table!r} in this account and region") from error
    except (BotoCoreError, ClientError) as error:
        raise UsageError(f"cannot reach DynamoDB table {table!r}: {error}") from error


def _require_paths(paths: Sequence[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")


def _sort_buffer_bytes(args: argparse.Namespace) -> int:
    if args.sort_buffer_mb < 1:
        raise UsageError("--sort-buffer-mb must be at least 1")
    return int(args.sort_buffer_mb) * 1024 * 1024


def _jobs(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    return int(args.jobs)


@contextmanager
def _progress() -> Iterator[ReplayProgress]:
    """A progress bar on stderr when a person is watching it; nothing in pipes and CI logs."""
    if not sys.stderr.isatty():
        yield NoProgress()
        return
    from ssm_detect.render.local import RichProgress  # noqa: PLC0415

    with RichProgress.on_stderr() as progress:
        yield progress


def _report_problems(problems: Sequence[str], unlisted: int) -> None:
    for problem in problems:
        # One plain line each: file and position first, so they can be grepped.
        sys.stderr.write(f"skipped: {problem}\n")
    if unlisted:
        sys.stderr.write(f"skipped: ... and {unlisted} more (counted in the summary)\n")


def _invoke(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.event.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {args.event}: {error}") from error
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # As template.yaml sets them: without a namespace Powertools refuses to flush the metrics.
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "ssm-detect")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SsmDetect")
    os.environ["STATE_TABLE_NAME"] = args.table
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = args.endpoint_url
        return _invoke_handler(payload, args.table)
    try:
        from moto import mock_aws  # noqa: PLC0415 - a development dependency
    except ImportError as error:
        raise UsageError("in-process AWS needs moto: pip install -e '.[dev]'") from error
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    with mock_aws():
        return _invoke_handler(payload, args.table)


def _invoke_handler(payload: object, table: str) -> int:
    from handler.app import lambda_handler  # noqa: PLC0415
    from handler.envelope import as_eventbridge_event  # noqa: PLC0415
    from ssm_detect.local_context import LocalLambdaContext  # noqa: PLC0415
    from ssm_detect.state.tables import ensure_state_table  # noqa: PLC0415
    from ssm_detect.wiring import dynamodb_client  # noqa: PLC0415

    if isinstance(payload, dict) and "eventSource" in payload and "detail" not in payload:
        # The function accepts only what its rules send: give a bare record their envelope.
        sys.stderr.write("invoke: a bare CloudTrail record, wrapped as EventBridge sends it\n")
        payload = as_eventbridge_event(payload)
    ensure_state_table(dynamodb_client(), table)
    result = lambda_handler(payload, LocalLambdaContext())
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
