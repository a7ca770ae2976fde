"""SNS transport: one publish per notification (email and Slack via AWS Chatbot): the findings
of one event, or an escalation, travel together (`render.grouped`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ssm_detect.findings import Finding
from ssm_detect.render.grouped import format_notification
from ssm_detect.render.sns_message import DEFAULT_OPTIONS, RenderOptions

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient


class SnsSink:
    name = "sns"

    def __init__(
        self, client: SNSClient, topic_arn: str, options: RenderOptions = DEFAULT_OPTIONS
    ) -> None:
        self._client = client
        self._topic_arn = topic_arn
        self._options = options

    def send(self, findings: Sequence[Finding]) -> None:
        """One publish for all of `findings` (the dispatcher hands one notification's)."""
        if not findings:
            return
        message = format_notification(findings, self._options)
        attributes: Any = message.message_attributes
        self._client.publish(
            TopicArn=self._topic_arn,
            Subject=message.subject,
            Message=message.message,
            MessageStructure=message.message_structure,
            MessageAttributes=attributes,
        )
