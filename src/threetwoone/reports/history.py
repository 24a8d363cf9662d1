"""``threetwoone history``: past verdicts from the catalog, newest first, as a
table or as JSON (shape in ``history.schema.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..catalog import ReferenceInfo

HISTORY_VERSION = 1

#: (started at, dataset, policy, status, summary) as the catalog keeps them.
Verdict = tuple[str, str, str, str, dict[str, Any]]


def render_history_table(verdicts: Sequence[Verdict],
                         reference: ReferenceInfo | None) -> str:
    from tabulate import tabulate

    rows = [(started, name, policy, status.upper(),
             ", ".join(f"{label}={state}" for label, state in summary["copies"].items()))
            for started, name, policy, status, summary in verdicts]
    out = [tabulate(rows, headers=["audit started", "dataset", "policy", "status", "copies"])]
    if reference:
        source, recorded_at, recorded_by = reference
        out += ["", f"reference: {source}, recorded {recorded_at} by {recorded_by}"]
    return "\n".join(out) + "\n"


def render_history_json(verdicts: Sequence[Verdict],
                        reference: ReferenceInfo | None) -> str:
    doc = {
        "history_version": HISTORY_VERSION,
        "reference": None if reference is None else {
            "source": reference.source, "recorded_at": reference.recorded_at,
            "recorded_by": reference.recorded_by},
        "verdicts": [{"started_at": started, "dataset": name, "policy": policy,
                      "status": status, "counts": summary.get("counts", {}),
                      "violations": summary.get("violations", []),
                      "copies": summary.get("copies", {})}
                     for started, name, policy, status, summary in verdicts],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
