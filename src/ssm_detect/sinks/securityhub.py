"""Security Hub transport: `BatchImportFindings` in batches of at most 100.

A finding listed in `FailedFindings` is a failure (raised, so Lambda retries), except when
Security Hub is not enabled in the account (`InvalidAccess`): that will not heal by retrying,
so it is reported once per execution environment (log + `SinkUnavailable` metric, which the
template alarms on) and the sink stops trying, instead of sending every event to the DLQ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ssm_detect.findings import Finding
from ssm_detect.render.asff import format_asff

if TYPE_CHECKING:
    from mypy_boto3_securityhub.client import SecurityHubClient

BATCH_SIZE = 100
_NOT_ENABLED = frozenset({"InvalidAccessException", "InvalidAccess"})
_INVALID_INPUT = "InvalidInput"


class ImportFailedError(Exception):
    """Security Hub rejected some findings of a batch."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SecurityHubSink:
    name = "securityhub"

    def __init__(
        self,
        client: SecurityHubClient,
        *,
        region: str,
        account: str,
        product_arn: str | None = None,
        on_unavailable: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client = client
        self._region = region
        self._account = account
        self._product_arn = product_arn
        self._on_unavailable = on_unavailable
        self._clock = clock
        self.unavailable: str | None = None

    def send(self, findings: Sequence[Finding]) -> None:
        if self.unavailable is not None:
            return
        documents = [self._document(f) for f in findings]
        for start in range(0, len(documents), BATCH_SIZE):
            if not self._import(documents[start : start + BATCH_SIZE]):
                return

    def _document(self, finding: Finding) -> dict[str, Any]:
        now = self._clock()
        created = finding.recorded_at or now
        # The window's clock (delivery.py): strictly increasing per finding id in the ledger's
        # order of claims, so the import Security Hub keeps (the newest `UpdatedAt`) is the one
        # that holds every firing, whatever order the imports arrive in. Creation needs
        # CreatedAt == UpdatedAt, which the ledger gives the window's first firing.
        updated = finding.updated_at or (created if finding.count == 1 else max(now, created))
        return format_asff(
            finding,
            product_arn=self._product_arn,
            region=self._region,
            account=self._account,
            created_at=created,
            updated_at=updated,
            count=finding.count,
        )

    def _import(self, batch: list[dict[str, Any]]) -> bool:
        try:
            response = self._client.batch_import_findings(Findings=batch)  # type: ignore[arg-type]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _NOT_ENABLED:
                self._disable(f"{code}: {error.response.get('Error', {}).get('Message', '')}")
                return False
            raise
        failed = response.get("FailedFindings", [])
        if failed and all(f.get("ErrorCode") in _NOT_ENABLED for f in failed):
            self._disable(f"{failed[0].get('ErrorCode')}: {failed[0].get('ErrorMessage', '')}")
            return False
        if failed:
            failed = self._create_then_update(batch, failed)
        if failed:
            details = "; ".join(
                f"{f.get('Id')}: {f.get('ErrorCode')} {f.get('ErrorMessage', '')}"[:300]
                for f in failed[:5]
            )
            raise ImportFailedError(f"{len(failed)} of {len(batch)} findings failed: {details}")
        return True

    def _create_then_update(self, batch: list[dict[str, Any]], failed: list[Any]) -> list[Any]:
        """Updates refused because their finding does not exist yet, imported again after a
        creation of the same record; returns what still fails.

        The window's first firing creates its record (CreatedAt == UpdatedAt). When that import
        never happened (its invocation failed after claiming, or is still waiting on a send
        lease) a later firing's update is refused as InvalidInput, and its retries would be
        refused the same way for ever. A creation stamped with the window's CreatedAt is what
        the first firing would have sent; where the record does exist, Security Hub ignores
        it (its UpdatedAt is older) and the refusal had another cause, which the second import
        reports again."""
        by_id = {str(d["Id"]): d for d in batch}
        refused = [
            by_id[str(f.get("Id"))]
            for f in failed
            if f.get("ErrorCode") == _INVALID_INPUT
            and str(f.get("Id")) in by_id
            and by_id[str(f.get("Id"))]["CreatedAt"] != by_id[str(f.get("Id"))]["UpdatedAt"]
        ]
        if not refused:
            return failed
        creations = [{**d, "UpdatedAt": d["CreatedAt"]} for d in refused]
        self._client.batch_import_findings(Findings=creations)  # type: ignore[arg-type]
        again = self._client.batch_import_findings(Findings=refused)  # type: ignore[arg-type]
        retried = {str(d["Id"]) for d in refused}
        others = [f for f in failed if str(f.get("Id")) not in retried]
        return [*others, *again.get("FailedFindings", [])]

    def _disable(self, reason: str) -> None:
        self.unavailable = reason
        if self._on_unavailable is not None:
            self._on_unavailable(
                f"Security Hub is not usable in account {self._account} / {self._region} "
                f"({reason}); findings are not imported there. Enable Security Hub or set "
                "SECURITY_HUB_ENABLED=false."
            )
