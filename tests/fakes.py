"""Small in-memory sinks for delivery tests: they record what they got, or fail on demand."""

from __future__ import annotations

from collections.abc import Sequence

from ssm_detect.findings import Finding


class SinkDownError(Exception):
    """What a failing fake sink raises (stands for a throttled or 5xx AWS call)."""


class RecordingSink:
    def __init__(self, name: str, failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.received: list[Finding] = []

    def send(self, findings: Sequence[Finding]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise SinkDownError(self.name)
        self.received.extend(findings)


class StrictSecurityHub:
    """The Security Hub rules moto does not enforce, as the AWS user guide states them:
    - with the default product ARN the caller's account must equal each `AwsAccountId`;
    - a new finding needs `CreatedAt == UpdatedAt`;
    - an import whose `UpdatedAt` is not later than the stored one is ignored;
    - at most 100 findings per call and 240 KB per finding."""

    def __init__(self, caller_account: str) -> None:
        self.caller_account = caller_account
        self.findings: dict[str, dict[str, object]] = {}
        self.calls = 0

    def batch_import_findings(self, *, Findings: list[dict[str, object]]) -> dict[str, object]:  # noqa: N803
        import json  # noqa: PLC0415

        from botocore.exceptions import ClientError  # noqa: PLC0415

        self.calls += 1
        if len(Findings) > 100:
            raise ClientError(
                {"Error": {"Code": "InvalidInputException", "Message": "more than 100"}},
                "BatchImportFindings",
            )
        failed = []
        for finding in Findings:
            if finding["AwsAccountId"] != self.caller_account:
                failed.append({"Id": finding["Id"], "ErrorCode": "AccessDeniedException"})
                continue
            if len(json.dumps(finding)) > 240_000:
                failed.append({"Id": finding["Id"], "ErrorCode": "InvalidInput"})
                continue
            stored = self.findings.get(str(finding["Id"]))
            if stored is None and finding["CreatedAt"] != finding["UpdatedAt"]:
                failed.append({"Id": finding["Id"], "ErrorCode": "InvalidInput"})
                continue
            if stored is None or str(finding["UpdatedAt"]) > str(stored["UpdatedAt"]):
                self.findings[str(finding["Id"])] = finding
        return {
            "FailedCount": len(failed),
            "SuccessCount": len(Findings) - len(failed),
            "FailedFindings": failed,
        }
