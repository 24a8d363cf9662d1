"""Report formats: each turns an AuditResult into text.  ``FORMATTERS`` maps
every ``--format`` and ``--report`` format to its formatter (a test checks they
agree)."""

from __future__ import annotations

from collections.abc import Callable

from ..results import AuditResult
from .html import render_html
from .json import render_json
from .junit import render_junit
from .markdown import render_markdown
from .prometheus import render_prometheus
from .table import render_table

Formatter = Callable[[AuditResult, bool], str]

FORMATTERS: dict[str, Formatter] = {
    "table": render_table,
    "json": render_json,
    "prometheus": render_prometheus,
    "junit": render_junit,
    "markdown": render_markdown,
    "html": render_html,
}

__all__ = ["FORMATTERS", "Formatter", "render_html", "render_json", "render_junit",
           "render_markdown", "render_prometheus", "render_table"]
