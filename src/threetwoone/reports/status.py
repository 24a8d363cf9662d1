"""``threetwoone status``: per copy, when it was last audited and fully
verified, and what the fixity schedule and the policy's ``max_age`` say is
overdue.  It reads only the catalog (and the inventory, when given).

Exit code: 1 when some copy has a reference file not fully verified within the
fixity interval (or never), or a copy's oldest full verification is older than
its policy's ``max_age``, or a copy in the inventory was never audited; else 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..catalog import CopyFixity
from ..errors import ExitCode
from ..policy import Policy
from .common import iso_time, plural

STATUS_VERSION = 1


@dataclass(frozen=True)
class CopyStanding:
    fixity: CopyFixity
    policy: Policy | None
    #: Declared in the inventory but never audited (no catalog entry).
    never_audited: bool = False

    def beyond_max_age(self, now: float) -> bool:
        """The copy's oldest full verification is older than the policy allows."""
        limit = self.policy.max_age if self.policy else None
        if limit is None:
            return False
        oldest = self.fixity.oldest_verified_at
        return (self.never_audited or self.fixity.never_verified > 0 or oldest is None
                or now - oldest > limit)

    def overdue(self, now: float) -> bool:
        return self.never_audited or self.fixity.overdue > 0 or self.beyond_max_age(now)


def exit_code(rows: Sequence[CopyStanding], now: float) -> int:
    return int(ExitCode.FAIL if any(row.overdue(now) for row in rows) else ExitCode.PASS)


def when(epoch: float | None, now: float) -> str:
    """``2026-10-01 01:15 UTC (3d ago)``, or ``never``."""
    if epoch is None:
        return "never"
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} ({(now - epoch) / 86400:.0f}d ago)"


def render_status_table(rows: Sequence[CopyStanding], now: float) -> str:
    from tabulate import tabulate

    if not rows:
        return "no copies audited yet\n"
    table = [(r.fixity.copy, "never audited" if r.never_audited else r.fixity.last_state or "-",
              when(r.fixity.last_audit_at, now), r.fixity.files,
              when(r.fixity.oldest_verified_at, now), r.fixity.overdue, r.fixity.due_soon)
             for r in rows]
    out = [tabulate(table, headers=["copy (dataset/location/path)", "state", "last audit",
                                    "files", "oldest full read", "overdue", "due in 24h"])]
    notes = []
    for row in rows:
        if row.beyond_max_age(now) and row.policy is not None:
            notes.append(f"{row.fixity.copy}: oldest full verification "
                         f"{when(row.fixity.oldest_verified_at, now)} is beyond policy "
                         f"{row.policy.name}'s max_age {row.policy.max_age_text}")
    late = sum(1 for row in rows if row.overdue(now))
    if notes:
        out += ["", *notes]
    out += ["", f"{plural(late, 'copy', 'copies')} overdue" if late
            else "nothing overdue"]
    return "\n".join(out) + "\n"


def render_status_json(rows: Sequence[CopyStanding], now: float, interval: float) -> str:
    copies: list[dict[str, Any]] = []
    for row in rows:
        fixity, policy = row.fixity, row.policy
        copies.append({
            "copy": fixity.copy, "dataset": fixity.dataset,
            "state": fixity.last_state, "audited": not row.never_audited,
            "last_audit": iso_time(fixity.last_audit_at), "files": fixity.files,
            "oldest_verification": iso_time(fixity.oldest_verified_at),
            "overdue_files": fixity.overdue, "never_verified_files": fixity.never_verified,
            "due_within_24h": fixity.due_soon,
            "policy": policy.name if policy else None,
            "max_age": policy.max_age_text if policy else None,
            "beyond_max_age": row.beyond_max_age(now), "overdue": row.overdue(now),
        })
    return json.dumps({"status_version": STATUS_VERSION, "now": iso_time(now),
                       "fixity_interval_seconds": interval,
                       "exit_code": exit_code(rows, now), "copies": copies},
                      indent=2, ensure_ascii=False) + "\n"


def standings(fixity: Sequence[CopyFixity], policies: Mapping[str, Policy | None],
              declared: Mapping[str, str] | None = None) -> list[CopyStanding]:
    """Join the catalog's rows with each dataset's policy; ``declared`` (copy key
    -> dataset, from an inventory) adds the copies the catalog never saw."""
    rows = [CopyStanding(f, policies.get(f.dataset)) for f in fixity]
    seen = {f.copy for f in fixity}
    for key, dataset in (declared or {}).items():
        if key not in seen:
            empty = CopyFixity(key, dataset, None, None, 0, None, 0, 0, 0)
            rows.append(CopyStanding(empty, policies.get(dataset), never_audited=True))
    return rows
