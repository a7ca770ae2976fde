"""AWS.SSM.SendCommand: a successful SSM SendCommand (Sigma 38e7f511).

The Sigma rule matches `errorCode: Success` or `errorCode: null`. CloudTrail omits `errorCode`
on success, so in practice this fires on every successful SendCommand: it is the detector's
record of remote command execution, made useful by the allowlist and the suppression window.

Attribute to people (issue 12 points 3-5). A SendCommand an AWS service issues on someone's
behalf (a State Manager association, an Automation step, a maintenance-window task) is judged
like a person's and linked to who configured it through the correlate-through-resource block
(`detections.service_attribution`): the configuration is the first half, the service's run the
second. The finding stays the run's (its id, principal and window are the SendCommand's as
CloudTrail records it), so both arrival orders land in one finding:
- configuration seen (either order): the severity is not lowered for the service, and
  `context["actors"]` names `configured_by` and `issued_by`;
- configuration named by the record but not seen within `ATTRIBUTION_WINDOW_DAYS`: one step
  lower (who set it up is unknown; the configuration arriving later raises it back, and the
  ledger's lead order makes the attributed firing the record);
- configuration not named: one step lower, or as the tells say;
- a document that runs no caller code (AWS-RunPatchBaseline, AWS-UpdateSSMAgent,
  AWS-GatherSoftwareInventory...): service activity, INFORMATIONAL, no state read.
Human calls make no state call: the detection is stateless for them.
"""

from __future__ import annotations

import json
from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    NO_PRIOR,
    AttackRef,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.content_inspection import escalate, hits_context, inspect_content
from detections.context import reached_instances, send_command_context, send_command_resources
from detections.execution_paths import code_runner
from detections.resources import principal_resources
from detections.send_command_tells import tells_of
from detections.service_attribution import ConfigRef, configured, issued_for
from detections.service_runs import (
    Assessment,
    attributed,
    configuration_mention,
    run_mention,
    unattributed,
)
from detections.stateful import Observed, StatefulDetection
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SendCommandCall, SsmEvent
from ssm_detect.state import StateSnapshot
from ssm_detect.state.correlate import CorrelateThroughResource, Correlation, Mention, Side

# The attribute names of the two halves in a configuration's item.
_SETS = {Side.FIRST: "configurations", Side.SECOND: "service_runs"}

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


class SendCommandDetection(StatefulDetection[Mention, Correlation]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        del settings
        if not event.record.succeeded:
            return False
        return isinstance(event.call, SendCommandCall) or configured(event) is not None

    def block(self, settings: Settings) -> CorrelateThroughResource:
        return CorrelateThroughResource(settings.attribution_window, names=_SETS)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Mention] | None:
        del prior
        call = event.call
        if isinstance(call, SendCommandCall):
            ref = _service_run(event, call)
            if ref is None:
                return None
            return Observed(
                ref.state_key(event), run_mention(event, call, ref, assess(event, call, settings))
            )
        found = configured(event)
        if found is None:
            return None
        ref, document = found
        return Observed(ref.state_key(event), configuration_mention(event, document))

    def evaluate_all(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> tuple[Verdict, ...]:
        if self.observed(event, settings, prior) is not None:
            return super().evaluate_all(event, settings, state, prior)
        call = event.call
        if not isinstance(call, SendCommandCall):
            return ()
        return (_plain(event, call, settings),)

    def judge(
        self, event: SsmEvent, settings: Settings, reading: Correlation, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        call = event.call
        if isinstance(call, SendCommandCall):
            ref = _service_run(event, call)
            if ref is None:
                return ()
            if not reading.pairs:
                return (unattributed(event, call, ref, assess(event, call, settings), settings),)
            key = ref.state_key(event)
        else:
            found = configured(event)
            if found is None:
                return ()
            key = found[0].state_key(event)
        return tuple(attributed(pair, key, capped=reading.capped) for pair in reading.pairs)


def _service_run(event: SsmEvent, call: SendCommandCall) -> ConfigRef | None:
    """The configuration an AWS service ran this code-running command for, when it is one and
    its record names it."""
    if not event.principal.is_aws_service or code_runner(call.document_name) is None:
        return None
    return issued_for(event, call)


def assess(event: SsmEvent, call: SendCommandCall, settings: Settings) -> Assessment:
    """What the call itself shows: HIGH, raised by visible malicious parameters, held at least
    HIGH by each of SendCommand's own tells (issue 12 point 7)."""
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
        severity = max(severity, Severity.HIGH, key=lambda s: s.rank)
        reasons = (*reasons, *tells.reasons)
    return Assessment(severity, reasons, context)


def _plain(event: SsmEvent, call: SendCommandCall, settings: Settings) -> Verdict:
    """A person's call, or a service's that names no configuration (or could not be keyed)."""
    severity, reasons, context = assess(event, call, settings)
    if event.principal.is_aws_service and not reasons:
        if code_runner(call.document_name) is None:
            # Sigma's rule is literal, so it matches; the reason tells the analyst why it is quiet.
            severity = Severity.INFORMATIONAL
            reasons = (
                "lowered to INFORMATIONAL: service activity (an AWS service ran "
                f"{call.document_name or 'a document'}, which runs no caller code)",
            )
        else:
            severity = severity.lowered()
            reasons = (
                "lowered one step: issued by an AWS service for a configuration its record does "
                "not name, so who set it up is not known",
            )
    explicit, unknown = reached_instances(call)
    reach = (
        f"an unknown number of instances ({', '.join(unknown)[:200]})"
        if unknown
        else f"{len(explicit)} target(s)"
    )
    return Verdict.of_event(
        event,
        summary=f"{event.principal.key} ran {call.document_name or 'a document'} on {reach}",
        severity=severity,
        severity_reasons=reasons,
        resources=send_command_resources(event, call, call.instance_ids)
        + principal_resources(event.principal),
        context=context,
    )
