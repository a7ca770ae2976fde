"""Attribute to people: which configuration an AWS-issued SendCommand runs for, and who made it.

State Manager runs an association, Automation runs an `aws:runCommand` step, a maintenance
window runs a RUN_COMMAND task: each time the SendCommand is made by the service
(`invokedBy` / `sourceIPAddress` `ssm.amazonaws.com`), not by the person who set it up. The
SendCommand detection links the two halves through the correlate-through-resource block
(`ssm_detect.state.correlate`), keyed by the configuration as a regional resource: account +
region + `association/<id>`, `automation-execution/<id>` or `maintenancewindow/<mw-id>`.

- First half, a *configuration*: a successful CreateAssociation / CreateAssociationBatch /
  UpdateAssociation of a document that runs code, a StartAutomationExecution /
  StartChangeRequestExecution (any runbook: its steps choose what they send), a
  RegisterTaskWithMaintenanceWindow / UpdateMaintenanceWindowTask of a RUN_COMMAND task that
  runs code; made by a person (a call an AWS service made on its own, such as Config
  remediation or Quick Setup, configures nothing here). A batch names the first such
  association (one state round trip per event).
- Second half, a *service-issued run*: a successful SendCommand by an AWS service principal of a
  document that runs code, whose record names the configuration (`issued_for`).

Where the record names the configuration (`issued_for`), in this order:
1. explicit fields in the request or the response's `command` (`associationId`,
   `automationExecutionId`, `windowId`, `windowExecutionId`'s window);
2. the response's `clientName` / `clientSourceId` pair (State Manager writes
   `StateManagerService` and the association id; Automation and maintenance windows their own
   client names and ids);
3. a maintenance-window id (`mw-` and 17 hex digits) in `clientSourceId`, the comment or the
   session name;
4. an id (a UUID) in the comment, named as an association or an automation execution by the
   comment itself or by State Manager's session (`StateManagerService`);
5. a session named by a UUID: Automation's steps run in a session named after the execution.
A record that names none stays unattributed (the finding says so).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detections.evidence import Actor, iso
from detections.execution_paths import code_parameters, code_runner
from ssm_detect.execution_calls import AssociationCall, AutomationCall, MaintenanceWindowTaskCall
from ssm_detect.models.event_time import to_epoch
from ssm_detect.ssm_event import SendCommandCall, SsmEvent
from ssm_detect.state.block import StateKey

ASSOCIATION = "association"
AUTOMATION = "automation-execution"
WINDOW = "maintenancewindow"
KINDS = {
    ASSOCIATION: "State Manager association",
    AUTOMATION: "Automation execution",
    WINDOW: "maintenance window",
}
_UUID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", re.IGNORECASE)
# CloudTrail's window ids are `mw-` and 17 hex digits; AWS's documentation examples (and so
# many test records) write `mw-0c50858d01EXAMPLE`: 17 letters or digits.
_WINDOW_ID = re.compile(r"\bmw-[0-9a-zA-Z]{17}\b")
_EXPLICIT = {"associationid": ASSOCIATION, "automationexecutionid": AUTOMATION}
_WINDOW_FIELDS = ("windowid", "windowexecutionid", "windowtaskid")
_STATE_MANAGER_SESSION = "statemanagerservice"
_MAX_FIELD = 256
_WINDOW_DOCUMENT_TASKS = frozenset({"RUN_COMMAND"})


@dataclass(frozen=True)
class ConfigRef:
    """A configuration that makes an AWS service run commands, as a regional resource."""

    kind: str
    """ASSOCIATION, AUTOMATION or WINDOW."""
    id: str
    via: str
    """Which field named it (for the finding: how the link was made)."""

    @property
    def label(self) -> str:
        return f"{KINDS[self.kind]} {self.id}"

    def state_key(self, event: SsmEvent) -> StateKey:
        return StateKey(
            "configured", event.account_id, f"{self.kind}/{self.id}", region=event.record.aws_region
        )


def issued_for(event: SsmEvent, call: SendCommandCall) -> ConfigRef | None:
    """The configuration a service-issued SendCommand runs for, when its record names one."""
    fields = _lowered(_extras(call))
    for name, kind in _EXPLICIT.items():
        if _text(fields.get(name)):
            return ConfigRef(kind, _text(fields.get(name)), name)
    for name in _WINDOW_FIELDS:
        found = _WINDOW_ID.search(_text(fields.get(name)))
        if found:
            return ConfigRef(WINDOW, found.group(), name)
    return _from_client(fields) or _from_text(event, call)


def _from_client(fields: Mapping[str, Any]) -> ConfigRef | None:
    client, source = _text(fields.get("clientname")).lower(), _text(fields.get("clientsourceid"))
    if not client or not source:
        return None
    window = _WINDOW_ID.search(source)
    if "maintenancewindow" in client or window:
        return ConfigRef(WINDOW, window.group(), "clientSourceId") if window else None
    uuid = _UUID.search(source)
    if uuid is None:
        return None
    if "statemanager" in client or "association" in client:
        return ConfigRef(ASSOCIATION, uuid.group().lower(), "clientSourceId")
    if "automation" in client:
        return ConfigRef(AUTOMATION, uuid.group().lower(), "clientSourceId")
    return None


def _from_text(event: SsmEvent, call: SendCommandCall) -> ConfigRef | None:
    command = call.response.command
    comment = _text(call.request.comment or (command.comment if command else None))
    session = _text(event.principal.session_name)
    for where, text in (
        ("clientSourceId", _text(_lowered(_extras(call)).get("clientsourceid"))),
        ("comment", comment),
        ("sessionName", session),
    ):
        window = _WINDOW_ID.search(text)
        if window:
            return ConfigRef(WINDOW, window.group(), where)
    uuid = _UUID.search(comment)
    if uuid:
        said = comment.lower()
        if "automation" in said:
            return ConfigRef(AUTOMATION, uuid.group().lower(), "comment")
        if "association" in said or session.lower() == _STATE_MANAGER_SESSION:
            return ConfigRef(ASSOCIATION, uuid.group().lower(), "comment")
    if _UUID.fullmatch(session):
        return ConfigRef(AUTOMATION, session.lower(), "sessionName")
    return None


def configured(event: SsmEvent) -> tuple[ConfigRef, str | None] | None:
    """The configuration a person's call sets up (and the document it runs), when it is one
    whose service-issued runs can name it; None for other calls and for AWS services' own."""
    if event.principal.is_aws_service or not event.record.succeeded:
        return None
    call = event.call
    if isinstance(call, AssociationCall):
        return next(
            (
                (ConfigRef(ASSOCIATION, a.association_id.lower(), "associationId"), a.name)
                for a in call.associations
                if a.association_id and code_runner(a.name) is not None
            ),
            None,
        )
    if isinstance(call, AutomationCall) and call.execution_id:
        ref = ConfigRef(AUTOMATION, call.execution_id.lower(), "automationExecutionId")
        return ref, call.document_name
    if isinstance(call, MaintenanceWindowTaskCall):
        task = call.task
        runs_code = code_runner(task.task_arn) is not None or bool(code_parameters(task.parameters))
        if task.window_id and call.task_type in _WINDOW_DOCUMENT_TASKS and runs_code:
            return ConfigRef(WINDOW, task.window_id, "windowId"), task.task_arn
    return None


# --- what each half remembers of its actor (the correlate block keeps small flat objects) ------

_KEPT_ACTOR_FIELDS = (
    "principal_key",
    "type",
    "arn",
    "role_arn",
    "session_name",
    "access_key_id",
    "source_ip",
    "user_agent",
    "is_aws_service",
)
"""The actor's fields a half stores: its event id and time are the member's own, its account
and region the key's, so they are not stored twice."""


def actor_data(event: SsmEvent) -> dict[str, Any]:
    data = Actor.of(event).as_data()
    return {name: data[name] for name in _KEPT_ACTOR_FIELDS}


def actor_from(data: Mapping[str, Any], event_id: str, epoch: int, key: StateKey) -> Actor:
    return Actor.from_data(
        {
            **{name: data.get(name) for name in _KEPT_ACTOR_FIELDS},
            "event_id": event_id,
            "event_time": iso(epoch),
            "region": key.region or "",
            "account_id": key.account,
        }
    )


def epoch_of(event: SsmEvent) -> int:
    return to_epoch(event.record.event_time)


def _extras(call: SendCommandCall) -> dict[str, Any]:
    """Fields CloudTrail writes that the models keep as extras (clientName, ...)."""
    found: dict[str, Any] = {}
    for model in (call.request, call.response.command):
        if model is not None and model.model_extra:
            found.update(model.model_extra)
    return found


def _lowered(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {str(name).lower(): value for name, value in fields.items()}


def _text(value: object) -> str:
    return value[:_MAX_FIELD] if isinstance(value, str) else ""


def strings(values: Iterable[object], limit: int) -> list[str]:
    return [str(v) for v in values][:limit]
