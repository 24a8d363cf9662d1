"""A one-line progress display on stderr, only when stderr is a terminal.

Cron and CI never see it; a person watching a long audit sees files and bytes
hashed and the rate.  Updates are throttled so drawing never costs hashing time.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from .audit import Progress


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class ProgressLine:
    def __init__(self, stream: TextIO | None, interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self.files = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._lock = threading.Lock()
        self._dirty = False

    @classmethod
    def for_stderr(cls) -> ProgressLine:
        stream = sys.stderr if sys.stderr is not None and sys.stderr.isatty() else None
        return cls(stream)

    def as_progress(self) -> Progress:
        return Progress(self.update if self.stream else None)

    def update(self, files: int, size: int) -> None:
        with self._lock:
            self.files += files
            self.bytes += size
            now = time.monotonic()
            if now - self._drawn_at < self.interval:
                return
            self._drawn_at = now
            elapsed = max(now - self.started, 1e-6)
            line = (f"hashed {self.files} files, {human_bytes(self.bytes)} "
                    f"({human_bytes(self.bytes / elapsed)}/s)")
            if self.stream:
                self.stream.write("\r\x1b[K" + line)
                self.stream.flush()
                self._dirty = True

    def clear(self) -> None:
        if self.stream and self._dirty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._dirty = False
