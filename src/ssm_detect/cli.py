"""`ssm-detect`: replay CloudTrail files locally, or run the real Lambda handler on one event."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ssm_detect.principal import PrincipalKeying
from ssm_detect.settings import Settings

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except UsageError as error:
        sys.stderr.write(f"ssm-detect: {error}\n")
        return EXIT_USAGE


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssm-detect", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    replay = commands.add_parser("replay", help="replay CloudTrail files through the detections")
    replay.add_argument("paths", nargs="+", type=Path, help="files or folders (recursive)")
    replay.add_argument("--state", type=Path, help="SQLite file that keeps state across runs")
    replay.add_argument("--output", choices=("table", "jsonl"), help="default: table on a tty")
    _settings_options(replay)
    replay.set_defaults(command=_replay)

    invoke = commands.add_parser("invoke", help="run the real Lambda handler on one event file")
    invoke.add_argument("event", type=Path)
    invoke.add_argument(
        "--endpoint-url", help="DynamoDB endpoint (e.g. DynamoDB Local); default: in-process moto"
    )
    invoke.add_argument("--table", default="ssm-detect-local", help="state table name")
    invoke.set_defaults(command=_invoke)
    return parser


def _settings_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detection settings (defaults: the Lambda's environment)")
    group.add_argument("--history-days", type=float)
    group.add_argument("--fanout-threshold", type=int)
    group.add_argument("--fanout-window-minutes", type=float)
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
    try:
        return Settings.from_env(env)
    except ValueError as error:
        raise UsageError(f"invalid settings: {error}") from error


def _replay(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415 - only the CLI needs rich

    from ssm_detect.render.local import finding_json, print_report  # noqa: PLC0415
    from ssm_detect.replay.engine import replay  # noqa: PLC0415
    from ssm_detect.wiring import local_runtime  # noqa: PLC0415

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    wired = local_runtime(settings_from(args), args.state)
    result = replay(args.paths, wired.pipeline, wired.dispatcher)
    output = args.output or ("table" if sys.stdout.isatty() else "jsonl")
    if output == "jsonl":
        for finding in result.findings:
            sys.stdout.write(finding_json(finding) + "\n")
        sys.stderr.write(json.dumps(result.summary.as_dict() | {"files": result.files}) + "\n")
    else:
        print_report(Console(), result.findings, result.summary, result.files)
    for problem in result.problems:
        # One plain line each: file and position first, so they can be grepped.
        sys.stderr.write(f"skipped: {problem}\n")
    return 0


def _invoke(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.event.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {args.event}: {error}") from error
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
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
    from ssm_detect.local_context import LocalLambdaContext  # noqa: PLC0415
    from ssm_detect.state.tables import ensure_state_table  # noqa: PLC0415
    from ssm_detect.wiring import dynamodb_client  # noqa: PLC0415

    ensure_state_table(dynamodb_client(), table)
    result = lambda_handler(payload, LocalLambdaContext())
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
