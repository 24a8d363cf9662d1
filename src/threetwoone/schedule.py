"""Which files to re-read tonight: the verify modes and the fixity schedule.

A nightly job over hundreds of terabytes cannot re-read everything each night,
yet silent corruption is only found by re-reading.  Like git-annex's
``fsck --incremental-schedule`` and repository audit cycles, we trust unchanged
metadata between full reads and spread the re-reads over an interval:

* ``full``: re-read every file;
* ``changed``: re-read only files that are new, or whose size, mtime or identity
  (inode, ETag) moved, or whose last check was not ok;
* ``scheduled`` (the nightly default): ``changed``, plus every file whose last
  full verification is older than the interval (*due*), plus tonight's share of
  the oldest-verified rest: ``total bytes * time since the last audit / interval``,
  so that a nightly run reads about 1/30 of the copy with a 30-day interval and
  every file is re-read at least once per interval.

``--max-read`` and ``--time-limit`` cap the scheduled re-reads, never the files
that changed (an unverified change is worse than a late fixity check).

Pure, no I/O: the auditor offers rows from the catalog; tests simulate many
nights with an injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from .durations import parse_duration
from .units import parse_size

__all__ = ["VERIFY_MODES", "NightlyPlanner", "VerifyPlan", "parse_duration", "parse_size"]

#: --verify: re-read what the fixity schedule says, only what changed, or everything.
VerifyMode = Literal["scheduled", "changed", "full"]
VERIFY_MODES: tuple[VerifyMode, ...] = get_args(VerifyMode)
DEFAULT_INTERVAL = 30 * 86400.0

@dataclass(frozen=True)
class VerifyPlan:
    mode: VerifyMode = "scheduled"
    interval: float = DEFAULT_INTERVAL
    max_read: int | None = None
    time_limit: float | None = None


class NightlyPlanner:
    """Decides, for trusted files offered oldest-verified first, which to re-read
    tonight under ``scheduled``: every due file, then the oldest until tonight's
    share is planned, within ``--max-read``."""

    def __init__(self, plan: VerifyPlan, now: float, last_audit_at: float | None,
                 total_bytes: int) -> None:
        self.plan = plan
        self.now = now
        # A last audit dated after now (a clock that was ahead) tells nothing of
        # how long ago it was: tonight's share is then a whole interval's.
        elapsed = (plan.interval if last_audit_at is None or last_audit_at > now
                   else now - last_audit_at)
        self.share = (total_bytes * min(elapsed / plan.interval, 1.0) if plan.interval > 0
                      else float(total_bytes))
        self.planned = 0

    def take(self, size: int, verified_at: float | None) -> bool | None:
        """True: re-read it; False: trust it (over the read cap); None: trust it
        and every file after it (newer, not due, tonight's share is planned)."""
        due = self.now - (verified_at or 0.0) >= self.plan.interval
        if not due and self.planned >= self.share:
            return None
        if self.plan.max_read is not None and self.planned + size > self.plan.max_read:
            return False
        self.planned += size
        return True
