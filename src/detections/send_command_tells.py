"""SendCommand's own tells (issue 12 point 7): what in the call itself makes it worse.

- a document from another account: `documentName` is an ARN whose account is neither the
  caller's nor one of `TRUSTED_ACCOUNTS_JSON` (a document shared by an attacker's account);
- AWS-RunRemoteScript / AWS-RunDocument: the code is fetched at run time (GitHub, S3, a URL,
  another SSM document), so the command seen here is not the code that runs; the source is
  shown when CloudTrail shows the parameters;
- output sent to an S3 bucket outside `KNOWN_OUTPUT_BUCKETS_JSON` (when that list is set): the
  command's output (credentials, files read) leaves through it.

Each tell is a reason on the SendCommand finding and keeps it at least HIGH (an AWS service
principal's call is then not lowered to INFORMATIONAL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from detections.execution_paths import owner_account, short_name
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SendCommandCall, SsmEvent

REMOTE_CODE_DOCUMENTS = frozenset({"AWS-RunRemoteScript", "AWS-RunDocument"})
_SOURCE_KEYS = ("sourceType", "sourceInfo", "commandLine", "documentSourceType", "documentSource")
MAX_SHOWN = 300


@dataclass
class Tells:
    reasons: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)


def tells_of(event: SsmEvent, call: SendCommandCall, settings: Settings) -> Tells:
    found = Tells()
    _foreign_document(event, call, settings, found)
    _remote_code(call, found)
    _output_bucket(call, settings, found)
    return found


def _foreign_document(
    event: SsmEvent, call: SendCommandCall, settings: Settings, found: Tells
) -> None:
    owner = owner_account(call.document_name)
    if owner is None or owner == event.account_id:
        return
    found.context["document_owner_account"] = owner
    if owner in settings.trusted_accounts:
        return
    found.reasons.append(f"document owned by account {owner}, outside the trusted accounts")


def _remote_code(call: SendCommandCall, found: Tells) -> None:
    name = short_name(call.document_name)
    if name not in REMOTE_CODE_DOCUMENTS:
        return
    source = _source(call.request.parameters)
    found.context["remote_code_source"] = source or "hidden by CloudTrail"
    shown = f": {json.dumps(source)[:MAX_SHOWN]}" if source else ""
    found.reasons.append(f"{name} fetches the code it runs at run time{shown}")


def _source(parameters: object) -> dict[str, str]:
    if not isinstance(parameters, dict):
        return {}
    return {
        key: str(value[0] if isinstance(value, list) and value else value)[:MAX_SHOWN]
        for key, value in parameters.items()
        if key in _SOURCE_KEYS
    }


def _output_bucket(call: SendCommandCall, settings: Settings, found: Tells) -> None:
    command = call.response.command
    bucket = call.request.output_s3_bucket_name or (
        command.output_s3_bucket_name if command else None
    )
    if not bucket or not settings.known_output_buckets:
        return
    if settings.is_known_output_bucket(bucket):
        return
    found.reasons.append(f"output sent to bucket {bucket}, not a known output bucket")
