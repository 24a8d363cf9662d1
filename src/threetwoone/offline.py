"""Offline media: a disk kept in a drawer.  A ``local`` location with
``offline: true`` and ``offline_max_age: 90d`` whose root is absent (the disk
is not plugged in) keeps its copies' last fully verified state while that is
younger than ``offline_max_age`` (``verification: remembered``); older, they
are ``unreachable`` like any absent disk.  Without this, every night the disk
spends in its drawer would end undetermined (exit 3).

The remembered state is the catalog's: the state of the copy's last audit, dated
by the oldest full read of its reference files (for an intact copy: every file
must have been read in full against the current reference, else nothing is
remembered).
"""

from __future__ import annotations

from .catalog import Catalog
from .inventory import Location
from .reports.common import iso_time
from .results import CopyResult, CopyState, Verification
from .schedule import parse_duration

#: States an audit established by reading the copy, which may be remembered.
REMEMBERED_STATES = ("intact", "incomplete", "corrupt", "outdated")


def max_age(location: Location) -> float | None:
    """The location's ``offline_max_age`` in seconds, if it keeps remembered states."""
    text = location.attribute("offline_max_age")
    if location.kind != "local" or location.attribute("offline") is not True or not text:
        return None
    return parse_duration(str(text))


def remember(catalog: Catalog, key: str, location: Location, now: float,
             result: CopyResult) -> bool:
    """Give the unreachable ``result`` its remembered state, when the location is
    offline media and what the catalog remembers is recent enough; True if so."""
    limit = max_age(location)
    if limit is None:
        return False
    rows = catalog.copy_status(limit, now, key)
    if not rows or rows[0].last_state not in REMEMBERED_STATES:
        return False
    row = rows[0]
    when = row.oldest_verified_at if row.last_state == "intact" else row.last_audit_at
    if row.last_state == "intact" and (row.never_verified or not row.files):
        when = None  # some file was never read in full: nothing to remember
    text = location.attribute("offline_max_age")
    if when is None or now - when > limit:
        result.detail = (f"{result.detail}; offline media: its last full verification is "
                         f"older than offline_max_age {text}" if when is not None
                         else f"{result.detail}; offline media, never fully verified")
        return False
    result.state = CopyState(str(row.last_state))
    result.verification = Verification.REMEMBERED
    result.verified_at = when
    if result.state is CopyState.INTACT:
        result.files.expected = result.files.present = row.files
    result.detail = (f"offline: {location.root} is not mounted; remembered as "
                     f"{row.last_state} from {iso_time(when)} until {iso_time(when + limit)} "
                     f"(offline_max_age {text})")
    return True
