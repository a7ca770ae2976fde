"""Local HTTP endpoints for the handler benchmarks, in their own process.

The handler under test runs unmodified, with real boto3 clients pointed here through
`AWS_ENDPOINT_URL_{DYNAMODB,SNS,SECURITYHUB}`, so its process holds only what it holds in
Lambda (its memory and latency are not mixed with an emulator's):

- DynamoDB (JSON protocol): each request is handed to moto's DynamoDB in this process, and
  moto's answer (or error, with `Item` for `ReturnValuesOnConditionCheckFailure`) goes back as
  DynamoDB would send it. Only used when DynamoDB Local is not available.
- SNS `Publish` and Security Hub `BatchImportFindings`: fixed success answers, no emulation
  (SNS and Security Hub do nothing the handler waits on beyond the HTTP round trip).

`GET /stats` returns the request count per operation. Prints `PORT <n>` once listening.

    python -m bench.aws_stub [--dynamodb]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import uuid
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SNS_PUBLISH = (
    '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
    "<PublishResult><MessageId>{id}</MessageId></PublishResult>"
    "<ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata></PublishResponse>"
)


class _Backend:
    def __init__(self, *, dynamodb: bool) -> None:
        self.counts: Counter[str] = Counter()
        self.dynamodb: Any = None
        self._lock = threading.Lock()  # moto's backends are not made for concurrent use
        if dynamodb:
            import boto3  # noqa: PLC0415
            from moto import mock_aws  # noqa: PLC0415

            self._mock = mock_aws()
            self._mock.start()
            self.dynamodb = boto3.client(
                "dynamodb",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
            )

    def dynamodb_call(self, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        from botocore import xform_name  # noqa: PLC0415
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            with self._lock:
                response = getattr(self.dynamodb, xform_name(operation))(**params)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "InternalError")
            body: dict[str, Any] = {
                "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                "message": error.response.get("Error", {}).get("Message", ""),
            }
            if "Item" in error.response:
                body["Item"] = error.response["Item"]
            return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400), body
        response.pop("ResponseMetadata", None)
        return 200, response


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(type(value).__name__)


def _handler(backend: _Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pooled connections expect
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK hold the body back ~40 ms on every keep-alive response.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            del format, args

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            body = json.dumps(dict(backend.counts)).encode()
            self._reply(200, body, "application/json")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = self.headers.get("X-Amz-Target", "")
            if target.startswith("DynamoDB_20120810.") and backend.dynamodb is not None:
                operation = target.split(".", 1)[1]
                backend.counts[f"dynamodb.{operation}"] += 1
                status, answer = backend.dynamodb_call(operation, json.loads(raw or b"{}"))
                body = json.dumps(answer, default=_json_default).encode()
                self._reply(status, body, "application/x-amz-json-1.0")
            elif self.path.startswith("/findings/import"):
                backend.counts["securityhub.BatchImportFindings"] += 1
                imported = len(json.loads(raw).get("Findings", []))
                body = json.dumps(
                    {"FailedCount": 0, "SuccessCount": imported, "FailedFindings": []}
                ).encode()
                self._reply(200, body, "application/json")
            elif b"Action=Publish" in raw:
                backend.counts["sns.Publish"] += 1
                body = _SNS_PUBLISH.format(id=uuid.uuid4()).encode()
                self._reply(200, body, "text/xml")
            else:
                backend.counts["unknown"] += 1
                self._reply(400, b'{"message": "not emulated"}', "application/json")

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dynamodb", action="store_true", help="answer DynamoDB with moto")
    args = parser.parse_args()
    backend = _Backend(dynamodb=args.dynamodb)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(backend))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
