"""docker's human-readable durations (go-units HumanDuration), shared by the daemon (ps STATUS)
and ctrctl (CREATED, "... ago"). Pure Python, no imports: cheap for the CLI."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """"Less than a second", "3 seconds", "About a minute", "5 hours", "2 weeks", ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"
