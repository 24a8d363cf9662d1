"""Report formats: each turns an AuditResult into text.  ``FORMATTERS`` maps
every ``--format`` and ``--report`` format to its formatter (a test checks they
agree).

A format's module is imported only when a report in that format is written:
a nightly run writing a table never pays for the XML, HTML or JSON machinery.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..results import AuditResult

Formatter = Callable[["AuditResult", bool], str]

#: format -> (module in this package, function)
_FORMATS: dict[str, tuple[str, str]] = {
    "table": ("table", "render_table"),
    "json": ("json", "render_json"),
    "prometheus": ("prometheus", "render_prometheus"),
    "junit": ("junit", "render_junit"),
    "markdown": ("markdown", "render_markdown"),
    "html": ("html", "render_html"),
}


class _Formatters(Mapping[str, Formatter]):
    """The formats, each imported on first use."""

    def __getitem__(self, name: str) -> Formatter:
        module, function = _FORMATS[name]
        found: Formatter = getattr(importlib.import_module(f"{__name__}.{module}"), function)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(_FORMATS)

    def __len__(self) -> int:
        return len(_FORMATS)


FORMATTERS: Mapping[str, Formatter] = _Formatters()


def __getattr__(name: str) -> Any:
    """``from threetwoone.reports import render_json`` still works, lazily."""
    for module, function in _FORMATS.values():
        if function == name:
            return getattr(importlib.import_module(f"{__name__}.{module}"), function)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FORMATTERS", "Formatter", "render_html", "render_json", "render_junit",
           "render_markdown", "render_prometheus", "render_table"]
