"""The one error a template raises, at parse or at execution; ctrctl prints it as one line (exit 125)."""

from __future__ import annotations


class TemplateError(Exception):
    pass
