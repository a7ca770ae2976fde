"""Typed models of what arrives: EventBridge envelopes, CloudTrail records, SSM API calls."""
