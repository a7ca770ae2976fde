"""The suppression ledger: one open finding per (detection, account, principal) and window."""

from ssm_detect.ledger.base import FindingLedger, LedgerEntry, SendLease, SendState, WindowClaim

__all__ = ["FindingLedger", "LedgerEntry", "SendLease", "SendState", "WindowClaim"]
