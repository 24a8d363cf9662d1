"""What several report formats share: times, the overall status, the order of
copy states from bad to good, and how to read a copy's place in the grid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..results import (
    AuditResult,
    CopyResult,
    CopyState,
    DatasetResult,
    Problem,
    ProblemKind,
    Status,
    Verification,
)
from ..words import plural

if TYPE_CHECKING:
    from ..policy import Violation

__all__ = ["ERROR_STATUS", "PROBLEMS_SHOWN", "STATE_ORDER", "CopyFinding", "baseline_notice",
           "copy_findings", "coverage_lines", "has_overdue", "headline", "iso_time",
           "locations_in_order", "not_passing", "overall_status", "overdue_text", "plural",
           "violation_steps"]

#: The overall status of a run that ended before a verdict (exit 4 or 5).
ERROR_STATUS = "error"

#: Copy states from worst to best: a grid cell holding two copies shows the worse.
STATE_ORDER = [CopyState.CORRUPT, CopyState.ERROR, CopyState.UNREACHABLE, CopyState.MISSING,
               CopyState.OUTDATED, CopyState.INCOMPLETE, CopyState.INTACT]


def iso_time(epoch: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC (``2026-10-01T01:15:00Z``), or None."""
    if epoch is None:
        return None
    stamp = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")


def overall_status(result: AuditResult) -> str:
    """pass | fail | unknown, or ``error`` when the run ended with exit 4 or 5."""
    return ERROR_STATUS if result.error is not None else result.status.value


def headline(result: AuditResult) -> str:
    """One line: ``FAIL: 3 datasets: 1 pass, 1 fail, 1 unknown`` (or the error)."""
    if result.error is not None:
        return f"ERROR (exit {result.exit_code}): {result.error}"
    totals = result.totals
    count = len(result.datasets)
    return (f"{result.status.value.upper()}: {plural(count, 'dataset')}: "
            f"{totals['pass']} pass, {totals['fail']} fail, {totals['unknown']} unknown")


def baseline_notice(result: AuditResult) -> str | None:
    """One line when this run recorded references from primary copies (a new
    baseline): printed even with -q, since a lost catalog looks just like this."""
    recorded = [d.name for d in result.datasets if d.reference == "recorded"]
    if not recorded:
        return None
    names = ", ".join(recorded[:5]) + (f" and {len(recorded) - 5} more"
                                      if len(recorded) > 5 else "")
    where = (f"the catalog {result.catalog} is new" if result.catalog_created
             else f"the catalog {result.catalog} had no reference for "
                  f"{'it' if len(recorded) == 1 else 'them'}")
    return (f"new baseline for {plural(len(recorded), 'dataset')} ({names}): {where}, so "
            "the primary copies as they are now became the reference; if an earlier "
            "catalog held references, stop and restore it (--state)")


def overdue_text(copy: CopyResult) -> str | None:
    """``12 files not read in full within the fixity interval``, or None.  The
    count leaves out the files this run found missing, corrupt or unreadable
    (they are reported as such; JSON ``overdue_files`` counts them too, as
    ``status`` does), so it says the same of a damaged copy as of an intact
    one: these other files are due a re-read."""
    if not copy.overdue_held:
        return None
    return f"{plural(copy.overdue_held, 'file')} not read in full within the fixity interval"


def has_overdue(dataset: DatasetResult) -> bool:
    """Some copy has files overdue for a fixity re-read: worth showing even with -q."""
    return any(overdue_text(c) for c in dataset.copies)


#: Problems listed per copy before "... and N more".
PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class CopyFinding:
    """What a report says about one copy: its notes (why it is not intact, what
    is overdue), its first problems and how many more there are."""

    copy: CopyResult
    notes: tuple[str, ...]
    problems: tuple[Problem, ...]
    more: int


def copy_findings(dataset: DatasetResult, *, extras: bool = True,
                  remembered: bool = True) -> list[CopyFinding]:
    """The copies a report lists under a dataset: not intact, the same storage as
    another, with files overdue, with problems to show (extra files only with
    ``extras``) or, with ``remembered``, offline media remembered from the catalog."""
    out = []
    for copy in dataset.copies:
        overdue = overdue_text(copy)
        shown = [p for p in copy.problems if extras or p.problem is not ProblemKind.EXTRA]
        if not (copy.state is not CopyState.INTACT or copy.same_as or overdue or shown
                or (remembered and copy.verification is Verification.REMEMBERED)):
            continue
        notes = tuple(note for note in (copy.detail, overdue) if note)
        out.append(CopyFinding(copy, notes, tuple(shown[:PROBLEMS_SHOWN]),
                               max(len(shown) - PROBLEMS_SHOWN, 0) + copy.problems_omitted))
    return out


def violation_steps(dataset: DatasetResult) -> list[tuple[Violation, str | None]]:
    """Each violation with its next step (None when there is none)."""
    return [(v, dataset.next_steps.get(v.rule)) for v in dataset.violations]


def not_passing(result: AuditResult) -> list[DatasetResult]:
    return [d for d in result.datasets if d.status is not Status.PASS]


def locations_in_order(result: AuditResult) -> list[str]:
    """Every location some copy is on, in the order they first appear."""
    return list(dict.fromkeys(c.location for d in result.datasets for c in d.copies))


def coverage_lines(dataset: DatasetResult) -> list[str]:
    """Files with no intact copy anywhere first, in capitals, then files with
    too few: the most urgent facts of a dataset, before any copy's verdict."""
    lines = []
    if dataset.files_lost:
        lines.append(f"  LOST: {plural(dataset.files_lost, 'file')} with no intact copy on any "
                     "copy reached (threetwoone plan lists them and what is left to do)")
    if dataset.files_at_risk:
        lines.append(f"  at risk: {plural(dataset.files_at_risk, 'file')} with fewer intact "
                     "copies than the policy requires (threetwoone plan says what to copy "
                     "where)")
    return lines
