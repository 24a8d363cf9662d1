"""A one-line progress display on stderr, only when stderr is a terminal.

Cron and CI never see it (nor does ``-q``); a person watching a long audit sees
the dataset and copy being audited, how much of that copy is settled (read, or
trusted from the catalog) out of what its listing holds, the read rate over the
last seconds and an estimate of the time left for the copy:

    ngi/P12345 tape:P12345/run1  4,210/20,000 files  312.0 MiB/1.2 GiB (26%)  98.1 MiB/s  ETA 0:09

Updates are throttled so drawing never costs hashing time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from .events import Progress
from .pathnames import display

#: Seconds of history the rate (and so the ETA) is measured over.
RATE_WINDOW = 10.0


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def clock_time(seconds: float) -> str:
    """``0:09`` (minutes), ``1:02:09`` (hours)."""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine:
    def __init__(self, stream: TextIO | None, interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic, width: int = 120) -> None:
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.width = width
        self.dataset = ""
        self.copy = ""
        self.total_files = 0
        self.total_bytes = 0
        self.files = 0  # settled in the current copy (read or trusted)
        self.bytes = 0
        #: (time, bytes read so far in the run): the rate over the last RATE_WINDOW s.
        self._reads: deque[tuple[float, int]] = deque()
        self._read_total = 0
        self._drawn_at = -1e9
        self._lock = threading.Lock()
        self._dirty = False

    @classmethod
    def for_stderr(cls, quiet: bool = False) -> ProgressLine:
        """Drawn only on a terminal, and never with -q."""
        tty = sys.stderr is not None and sys.stderr.isatty()
        stream = sys.stderr if tty and not quiet else None
        width = 120
        if stream is not None:
            import shutil
            width = shutil.get_terminal_size((120, 24)).columns
        return cls(stream, width=width)

    def as_progress(self) -> Progress:
        if not self.stream:
            return Progress()
        return Progress(self.read, self.start_copy, self.trusted)

    # -- events ------------------------------------------------------------------
    def start_copy(self, dataset: str, label: str, files: int, size: int) -> None:
        with self._lock:
            self.dataset, self.copy = dataset, label
            self.total_files, self.total_bytes = files, size
            self.files = self.bytes = 0
            self._draw(force=True)

    def read(self, files: int, size: int) -> None:
        with self._lock:
            self.files += files
            self.bytes += size
            self._read_total += size
            now = self.clock()
            self._reads.append((now, self._read_total))
            while len(self._reads) > 2 and now - self._reads[1][0] > RATE_WINDOW:
                self._reads.popleft()
            self._draw()

    def trusted(self, files: int, size: int) -> None:
        with self._lock:
            self.files += files
            self.bytes += size
            self._draw()

    # -- drawing -----------------------------------------------------------------
    def rate(self) -> float | None:
        """Bytes read per second over the last RATE_WINDOW seconds (None: too early)."""
        if len(self._reads) < 2:
            return None
        (start, first), (end, last) = self._reads[0], self._reads[-1]
        return (last - first) / (end - start) if end > start else None

    def text(self) -> str:
        # Names are escaped: a file or dataset name must not drive the terminal.
        parts = [f"{display(self.dataset)} {display(self.copy)}".strip()]
        if self.total_files:
            parts.append(f"{self.files:,}/{self.total_files:,} files")
            share = min(self.bytes / self.total_bytes, 1.0) if self.total_bytes else 1.0
            parts.append(f"{human_bytes(self.bytes)}/{human_bytes(self.total_bytes)} "
                         f"({share:.0%})")
        rate = self.rate()
        if rate:
            parts.append(f"{human_bytes(rate)}/s")
            left = max(self.total_bytes - self.bytes, 0)
            if self.total_bytes:
                parts.append(f"ETA {clock_time(left / rate)}")
        line = "  ".join(p for p in parts if p)
        return line if len(line) < self.width else line[: self.width - 2] + "…"

    def _draw(self, force: bool = False) -> None:
        now = self.clock()
        if not self.stream or (not force and now - self._drawn_at < self.interval):
            return
        self._drawn_at = now
        self.stream.write("\r\x1b[K" + self.text())
        self.stream.flush()
        self._dirty = True

    def clear(self) -> None:
        if self.stream and self._dirty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._dirty = False
