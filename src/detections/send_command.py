"""AWS.SSM.SendCommand: a successful SSM SendCommand (Sigma 38e7f511).

The Sigma rule matches `errorCode: Success` or `errorCode: null`. CloudTrail omits `errorCode`
on success, so in practice this fires on every successful SendCommand: it is the detector's
record of remote command execution, made useful by the allowlist and the suppression window.
"""

from __future__ import annotations

import json
from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    AttackRef,
    CallDetection,
    DetectionMetadata,
    Verdict,
)
from detections.content_inspection import escalate, hits_context, inspect_content
from detections.context import reached_instances, send_command_context, send_command_resources
from detections.resources import principal_resources
from detections.send_command_tells import tells_of
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SendCommandCall, SsmEvent

METADATA = DetectionMetadata(
    id="AWS.SSM.SendCommand",
    title="SSM SendCommand executed commands on managed instances",
    description=(
        "A principal successfully called ssm:SendCommand, which runs a document's commands "
        "(shell or PowerShell) on EC2 instances and other managed nodes."
    ),
    severity=Severity.HIGH,
    attack=(
        AttackRef(
            tactic_id="TA0001",
            tactic="initial-access",
            technique_id="T1566.002",
            technique="Phishing: Spearphishing Link (as tagged by the Sigma seed)",
        ),
        CLOUD_ADMINISTRATION_COMMAND,
    ),
    seed="Sigma 38e7f511-3f74-41d4-836e-f57dfa18eead "
    "'Potential Malicious Usage of CloudTrail System Manager'",
    references=(
        "https://github.com/SigmaHQ/sigma (rule 38e7f511-3f74-41d4-836e-f57dfa18eead)",
        "https://github.com/elastic/detection-rules/blob/v8.6.0/rules/integrations/aws/"
        "initial_access_via_system_manager.toml",
        "https://attack.mitre.org/techniques/T1651/",
    ),
    false_positives=(
        "Legitimate administration: engineers running commands on instances they maintain.",
        "State Manager and Patch Manager associations run by AWS service roles.",
    ),
    runbook=(
        "Identify the principal, its session and source IP; confirm with its owner that the "
        "command was expected. Review the document and its parameters "
        "(ssm:GetCommandInvocation with the command id shows the output) and the instances it "
        "ran on. If unexpected: revoke the session, disable the access key, isolate the instances."
    ),
)


class SendCommandDetection(CallDetection[SendCommandCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = SendCommandCall

    def judge(self, event: SsmEvent, call: SendCommandCall, settings: Settings) -> Verdict | None:
        severity: Severity = METADATA.severity
        reasons: tuple[str, ...] = ()
        context = send_command_context(event, call)
        parameters = call.request.parameters
        if isinstance(parameters, dict | list):
            # Usually HIDDEN_DUE_TO_SECURITY_REASONS; when CloudTrail shows the commands, read them.
            # The model has cut them down to a bounded depth (absurd nesting is not bad input:
            # the command ran), so this serialises; the finding says when something was cut.
            report = inspect_content(json.dumps(parameters))
            severity, reasons = escalate(severity, report)
            if report.hits:
                context["parameter_findings"] = hits_context(report)
            if call.request.truncated_fields:
                context["nesting_truncated"] = list(call.request.truncated_fields)
        tells = tells_of(event, call, settings)
        context.update(tells.context)
        if tells.reasons:
            # Issue 12 point 7: each tell keeps the finding at least HIGH (and not lowered).
            severity = max(severity, Severity.HIGH, key=lambda s: s.rank)
            reasons = (*reasons, *tells.reasons)
        if event.principal.is_aws_service and not reasons:
            # Sigma's rule is literal, so it matches; the reason tells the analyst why it is quiet.
            severity = Severity.INFORMATIONAL
            reasons = (
                *reasons,
                "lowered to INFORMATIONAL: initiated by an AWS service (State Manager)",
            )
        explicit, unknown = reached_instances(call)
        reach = (
            f"an unknown number of instances ({', '.join(unknown)[:200]})"
            if unknown
            else f"{len(explicit)} target(s)"
        )
        return Verdict(
            summary=(f"{event.principal.key} ran {call.document_name or 'a document'} on {reach}"),
            decisive_event_id=event.event_id,
            event_ids=(event.event_id,),
            first_seen=event.record.event_time,
            last_seen=event.record.event_time,
            severity=severity,
            severity_reasons=reasons,
            resources=send_command_resources(event, call, call.instance_ids)
            + principal_resources(event.principal),
            context=context,
        )
