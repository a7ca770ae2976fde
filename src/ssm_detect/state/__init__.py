"""State: the store contract and its implementations (DynamoDB, in-memory, SQLite), and the
three shared state blocks every stateful detection declares (`first_seen`, `distinct_window`,
`correlate`; their common ground in `block`). README: "Architecture" and "Adding a detection"."""

from ssm_detect.state.base import StatePrune, StateSnapshot, StateStore, StateUpdate

__all__ = ["StatePrune", "StateSnapshot", "StateStore", "StateUpdate"]
