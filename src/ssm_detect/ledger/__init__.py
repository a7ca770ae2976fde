"""The suppression ledger: one item per (detection, account, principal) and event-time window."""

from ssm_detect.ledger.base import (
    FindingLedger,
    LedgerEntry,
    Mark,
    SendLease,
    SendOutcome,
    SendState,
    WindowClaim,
)

__all__ = [
    "FindingLedger",
    "LedgerEntry",
    "Mark",
    "SendLease",
    "SendOutcome",
    "SendState",
    "WindowClaim",
]
