"""What an audit tells whoever shows its progress, and nothing else: the
Auditor and the backends report through these types, the display
(progress.py) receives them; neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Called as hashing proceeds: (files finished, bytes read).
ProgressCallback = Callable[[int, int], None]


@dataclass
class Progress:
    """Receives (files, bytes) as hashing proceeds, each copy's totals once it
    is listed, and what is trusted without a read; the CLI draws it."""

    callback: ProgressCallback | None = None
    #: (dataset, copy label, files listed, bytes listed)
    on_copy: Callable[[str, str, int, int], None] | None = None
    #: (files, bytes) trusted from the catalog without a read
    on_cached: ProgressCallback | None = None

    def __call__(self, files: int, size: int) -> None:
        if self.callback:
            self.callback(files, size)

    def copy(self, dataset: str, label: str, files: int, size: int) -> None:
        if self.on_copy:
            self.on_copy(dataset, label, files, size)

    def cached(self, files: int, size: int) -> None:
        if self.on_cached:
            self.on_cached(files, size)
