"""A Lambda context for running the real handler outside Lambda (`ssm-detect invoke`, tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LocalLambdaContext:
    function_name: str = "ssm-detect-local"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:ssm-detect-local"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    """A new id per context, as Lambda gives each invocation (and the same to its retries)."""
    log_group_name: str = "/aws/lambda/ssm-detect-local"
    log_stream_name: str = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000
