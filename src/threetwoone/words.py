"""Counted nouns in messages: ``1 file``, ``2 files``, never ``1 file(s)``."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``plural(1, "file")`` -> ``1 file``; ``plural(2, "copy", "copies")`` ->
    ``2 copies``."""
    return f"{count} {noun}" if count == 1 else f"{count} {many or noun + 's'}"
