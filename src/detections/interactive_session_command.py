"""AWS.SSM.InteractiveSessionCommand: a session that runs a malicious-looking command (issue 13,
point 3).

`AWS-StartInteractiveCommand` (and `AWS-StartNonInteractiveCommand`, or a customer Session
document taking a `command`/`commands` parameter) runs one command instead of a shell, and,
unlike a shell session's keystrokes, the command is in CloudTrail's `requestParameters`. We read
it with the same content inspector as documents (`content_inspection`): download-and-execute,
reverse shells, instance-metadata credential access and encoded payloads make it HIGH
(CRITICAL with another kind of evidence); persistence or disabling security tools alone make
it MEDIUM. A command with no hit is not reported: running `top` through a session is ordinary.
"""

from __future__ import annotations

from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    CallDetection,
    DetectionMetadata,
    Verdict,
)
from detections.content_inspection import escalate, hits_context, inspect_content
from detections.malicious_document_content import CLOUD_INSTANCE_METADATA
from detections.session_context import session_context, session_resources
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent, StartSessionCall

# Escalation starts here: a severe hit lands on HIGH, severe plus another kind on CRITICAL, a
# lesser hit (persistence, defence evasion) on MEDIUM (content_inspection.escalate).
_BASE = Severity.LOW

METADATA = DetectionMetadata(
    id="AWS.SSM.InteractiveSessionCommand",
    title="SSM session ran a command that downloads code, opens a shell or steals credentials",
    description=(
        "A principal started a Session Manager session that runs a single command (for example "
        "AWS-StartInteractiveCommand), and the command, visible in CloudTrail, does what "
        "attackers do: download-and-execute, a reverse shell, instance-metadata credential "
        "access or an encoded payload (persistence and disabling security tools add evidence)."
    ),
    severity=Severity.HIGH,
    attack=(
        CLOUD_ADMINISTRATION_COMMAND,
        CLOUD_INSTANCE_METADATA,
    ),
    seed="Stratus Red Team aws.execution.ssm-start-session (ours: command inspection)",
    references=(
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.execution.ssm-start-session/",
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "session-manager-working-with-sessions-start.html",
        "https://attack.mitre.org/techniques/T1651/",
    ),
    false_positives=(
        "Installers that pipe a vendor script to a shell, run through a session by an operator.",
        "Health checks that read the node's own metadata.",
    ),
    runbook=(
        "Read the matched command in the finding. Terminate the session if it is still open "
        "(ssm:TerminateSession), isolate the node, fetch any URL it downloads from a safe host, "
        "and rotate the node's instance-role credentials if metadata was read."
    ),
)


class InteractiveSessionCommandDetection(CallDetection[StartSessionCall]):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = StartSessionCall

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        """Successful sessions that run a command: a shell session has none to inspect."""
        call = self.call_of(event)
        return (
            super().applies_to(event, settings)
            and call is not None
            and bool(session_commands(call))
        )

    def judge(self, event: SsmEvent, call: StartSessionCall, settings: Settings) -> Verdict | None:
        del settings
        report = inspect_content("\n".join(session_commands(call)))
        if not report.hits:
            return None
        severity, reasons = escalate(_BASE, report)
        kinds = "; ".join(dict.fromkeys(h.title for h in report.hits))
        return Verdict.of_event(
            event,
            summary=(
                f"{event.principal.key} ran a command through a session on "
                f"{call.target or 'a managed node'} that {kinds}"
            ),
            severity=severity,
            severity_reasons=reasons,
            resources=session_resources(event, call),
            context=session_context(event, call)
            | {
                "content_parsed_as": report.parsed_as,
                "content_findings": hits_context(report),
                "content_truncated": report.truncated,
            },
        )


def session_commands(call: StartSessionCall) -> tuple[str, ...]:
    """The values of every parameter whose name says it holds a command (`command`, `commands`,
    any letter case): AWS's documents use `command`, customers' documents name their own."""
    return tuple(
        value
        for name, values in call.request.parameter_values.items()
        if "command" in name.lower()
        for value in values
    )
