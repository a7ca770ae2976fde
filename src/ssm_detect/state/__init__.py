"""Per-principal state: an interface and its implementations (DynamoDB, in-memory, SQLite)."""

from ssm_detect.state.base import StatePrune, StateSnapshot, StateStore, StateUpdate

__all__ = ["StatePrune", "StateSnapshot", "StateStore", "StateUpdate"]
