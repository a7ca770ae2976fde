"""The CloudTrail event names the code reads (eventSource `ssm.amazonaws.com`).

One list, so that the EventBridge rules (template.yaml's two buses and
templates/member-forwarder.yaml) forward exactly what the detections need: an event name the
code reads but the rules do not forward is a blind spot, one they forward but no detection reads
costs an invocation for nothing. tests/test_event_names.py checks the three rules against it.
Append new names here, in the group of the issue that reads them.
"""

from __future__ import annotations

SSM_EVENT_SOURCE = "ssm.amazonaws.com"
"""Here, not only with the record models, so that replay's reader processes can test it without
importing pydantic (replay/reader.py)."""

SEND_AND_CREATE = ("SendCommand", "CreateDocument")
"""The two calls of the seed rules."""

EXECUTION_PATHS = (
    "UpdateDocument",
    "UpdateDocumentDefaultVersion",
    "ModifyDocumentPermission",
    "UpdateServiceSetting",
    "CreateAssociation",
    "CreateAssociationBatch",
    "UpdateAssociation",
    "StartAutomationExecution",
    "StartChangeRequestExecution",
    "RegisterTaskWithMaintenanceWindow",
    "UpdateMaintenanceWindowTask",
)
"""Every other way SSM runs a caller's code, or changes what it runs (issue 12)."""

SESSIONS_SECRETS_ACTIVATIONS = (
    "StartSession",
    "CreateActivation",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "DescribeParameters",
)
"""Session Manager, Parameter Store and hybrid activations (issue 13); the read-only ones
reach EventBridge only through the switchable secret-read rules."""

DETECTED_EVENT_NAMES: tuple[str, ...] = (
    *SEND_AND_CREATE,
    *EXECUTION_PATHS,
    *SESSIONS_SECRETS_ACTIVATIONS,
)
"""Every name the detections read, in the order the rules list them."""
