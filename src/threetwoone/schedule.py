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

Pure functions, no I/O: tests simulate many nights with an injected clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .backends import Entry
from .catalog import SeenFile

VERIFY_MODES = ("scheduled", "changed", "full")
DEFAULT_INTERVAL = 30 * 86400.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B?)\s*$", re.I)


def parse_duration(text: str) -> float:
    """``90d``, ``4h``, ``30m``, ``2w``, ``45s`` or seconds -> seconds."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 30d, 4h, 90m)")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[unit]


def parse_size(text: str) -> int:
    """``500GiB``, ``2TB``, ``10G`` or bytes -> bytes (K/M/G = powers of 1024 with
    ``i``; powers of 1000 with a bare ``B``, as disks are sold)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 500GiB, 2TB)")
    number, prefix, suffix = float(match.group(1)), match.group(2).upper(), match.group(3)
    power = "KMGTP".index(prefix) + 1 if prefix else 0
    base = 1000 if suffix.lower() == "b" and prefix else 1024
    return int(number * base ** power)


@dataclass(frozen=True)
class VerifyPlan:
    mode: str = "scheduled"
    interval: float = DEFAULT_INTERVAL
    max_read: int | None = None
    time_limit: float | None = None


@dataclass
class Selection:
    #: Must be read tonight: new, changed, or not ok last time.
    must: list[Entry] = field(default_factory=list)
    #: Scheduled re-reads, the most overdue first; cut by the caps.
    scheduled: list[Entry] = field(default_factory=list)
    #: Trusted from the catalog (unchanged since verified, not scheduled).
    cached: list[tuple[Entry, SeenFile]] = field(default_factory=list)


def unchanged(entry: Entry, before: SeenFile | None) -> bool:
    return (before is not None and before.result == "ok" and before.size == entry.size
            and before.mtime_ns == entry.mtime_ns and before.ident == entry.ident
            and before.verified_at is not None)


def select(candidates: Sequence[tuple[Entry, SeenFile | None]], plan: VerifyPlan,
           now: float, last_audit_at: float | None) -> Selection:
    """Split ``candidates`` (present files with their catalog rows) by ``plan``."""
    out = Selection()
    if plan.mode == "full":
        out.must = [entry for entry, _ in candidates]
        return out
    trusted: list[tuple[Entry, SeenFile]] = []
    for entry, before in candidates:
        if before is not None and unchanged(entry, before):
            trusted.append((entry, before))
        else:
            out.must.append(entry)
    if plan.mode == "changed":
        out.cached = trusted
        return out
    trusted.sort(key=lambda item: item[1].verified_at or 0.0)  # oldest first
    total = sum(entry.size for entry, _ in candidates)
    elapsed = plan.interval if last_audit_at is None else max(now - last_audit_at, 0.0)
    share = total * min(elapsed / plan.interval, 1.0) if plan.interval > 0 else total
    budget = plan.max_read
    planned = 0
    for entry, before in trusted:
        due = now - (before.verified_at or 0.0) >= plan.interval
        wanted = due or planned < share
        fits = budget is None or planned + entry.size <= budget
        if wanted and fits:
            out.scheduled.append(entry)
            planned += entry.size
        else:
            out.cached.append((entry, before))
    return out
