"""The progress line: per copy totals once listed, share settled, the read rate
over the last seconds, ETA, the current dataset and copy; only on a terminal
(a real pseudo-terminal here), never with -q."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from conftest import Lab

MIB = 1024 * 1024


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def last_line(term: Terminal) -> str:
    return term.getvalue().rsplit("\r\x1b[K", 1)[-1]


def test_share_rate_and_eta() -> None:
    from threetwoone.progress import ProgressLine

    term, clock = Terminal(), Clock()
    line = ProgressLine(term, interval=0, clock=clock)
    progress = line.as_progress()
    progress.copy("ngi/P1", "tape:P1/run1", 10, 100 * MIB)
    assert last_line(term) == "ngi/P1 tape:P1/run1  0/10 files  0 B/100.0 MiB (0%)"
    progress(1, 10 * MIB)
    clock.now += 1
    progress(1, 10 * MIB)  # 10 MiB in the last second
    assert last_line(term) == ("ngi/P1 tape:P1/run1  2/10 files  20.0 MiB/100.0 MiB (20%)  "
                               "10.0 MiB/s  ETA 0:08")
    progress.cached(3, 30 * MIB)  # trusted from the catalog: settled, but not read
    assert "5/10 files  50.0 MiB/100.0 MiB (50%)  10.0 MiB/s  ETA 0:05" in last_line(term)
    # The rate is over the last seconds (from the last read before the window):
    # a slow stretch shows at once, not averaged with the fast start.
    clock.now += 20
    progress(1, 1 * MIB)
    clock.now += 10
    progress(1, 1 * MIB)
    assert "52.0 MiB/100.0 MiB (52%)  68.3 KiB/s  ETA 12:00" in last_line(term)  # 2 MiB/30 s


def test_names_cannot_drive_the_terminal() -> None:
    from threetwoone.progress import ProgressLine

    term = Terminal()
    ProgressLine(term, interval=0).as_progress().copy("evil\x1b[2J", "nas:x\n", 1, 1)
    assert "\x1b[2J" not in term.getvalue() and "evil\\x1b[2J nas:x\\n" in term.getvalue()


def run_on_a_terminal(lab: Lab, *args: str) -> str:
    """The CLI with stderr on a real pseudo-terminal; what the terminal showed."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "threetwoone", "audit",
                               str(lab.inventory), "--state", str(lab.state), *args],
                              stdout=subprocess.PIPE, stderr=terminal, timeout=120)
        assert proc.returncode == 0, proc.stdout
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
        return shown.decode()
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)


def test_a_real_terminal_shows_progress_and_quiet_does_not(lab: Lab) -> None:
    lab.three_copies({f"f{i}.fq": os.urandom(1000) for i in range(5)})
    lab.write()
    shown = run_on_a_terminal(lab)
    assert "ds nas:ds  " in shown and "/5 files" in shown and "%)" in shown
    assert "ds remote:ds  " in shown
    assert shown.endswith("\r\x1b[K") or "new baseline" in shown  # cleared before output
    quiet = run_on_a_terminal(lab, "-q")
    assert "files" not in quiet and "%" not in quiet
