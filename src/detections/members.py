"""Moved to `ssm_detect.state.members` (the state blocks own the member format); kept as an
alias for the delivery ledger, which shares the encoding."""

from ssm_detect.state.members import decode, decode_all, encode, stale

__all__ = ["decode", "decode_all", "encode", "stale"]
