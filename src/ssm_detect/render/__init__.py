"""Pure renderings of findings: terminal, JSON lines (and, with the sinks issue, ASFF and SNS)."""
