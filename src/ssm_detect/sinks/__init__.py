"""Where findings go. Formatting is pure; sending is a transport behind `FindingSink`."""

from ssm_detect.sinks.base import FindingSink

__all__ = ["FindingSink"]
