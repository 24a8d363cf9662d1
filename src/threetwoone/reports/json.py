"""JSON report, version 1 (README, "Reports"), validated against ``report.schema.json``."""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

from .. import __version__
from ..pathnames import display, raw_base64
from ..results import AuditResult, CopyResult, DatasetResult, Problem
from .common import iso_time, overall_status

REPORT_VERSION = 1


def _problem(problem: Problem) -> dict[str, Any]:
    out: dict[str, Any] = {"path": display(problem.path), "problem": problem.problem.value,
                           "detail": problem.detail}
    raw = raw_base64(problem.path)
    if raw is not None:
        out["path_base64"] = raw
    return out


def _copy(copy: CopyResult) -> dict[str, Any]:
    files = copy.files
    return {
        "location": copy.location, "path": display(copy.path), "media": copy.media,
        "site": copy.site, "primary": copy.primary, "offsite": copy.offsite,
        "counted": copy.counted, "state": copy.state.value,
        "verification": copy.verification.value,
        "files": {"expected": files.expected, "present": files.present,
                  "missing": files.missing, "corrupt": files.corrupt, "extra": files.extra,
                  "unreadable": files.unreadable, "outdated": files.outdated},
        "bytes": copy.bytes,
        "last_full_verification": iso_time(copy.verified_at),
        "overdue_files": copy.overdue_files,
        "problems": [_problem(p) for p in copy.problems],
        "problems_omitted": copy.problems_omitted,
        # Extensions beyond the first version's minimum:
        "detail": copy.detail, "methods": copy.methods, "same_as": copy.same_as,
        "verified_files": copy.verified_files, "cached_files": copy.cached_files,
        "bytes_read": copy.bytes_read, "next_step": copy.next_step,
    }


def _dataset(dataset: DatasetResult) -> dict[str, Any]:
    return {
        "name": dataset.name, "policy": dataset.policy, "status": dataset.status.value,
        "counts": dataset.counts,
        "violations": [{"rule": v.rule, "required": v.required, "found": v.found,
                        "message": v.message, "next_step": dataset.next_steps.get(v.rule)}
                       for v in dataset.violations],
        "warnings": dataset.warnings,
        "copies": [_copy(c) for c in dataset.copies],
        "reference": dataset.reference, "attested": dataset.attested,
        "reference_files": (dataset.reference_files.as_dict()
                            if dataset.reference_files else None),
        "duration_seconds": round(dataset.duration_seconds, 3),
        "files_at_risk": dataset.files_at_risk, "files_lost": dataset.files_lost,
    }


def report_dict(result: AuditResult) -> dict[str, Any]:
    out = _head(result)
    out["datasets"] = [_dataset(d) for d in result.datasets]
    if result.error is not None:
        out["error"] = out.pop("error")  # after the datasets, as always
    return out


def _head(result: AuditResult) -> dict[str, Any]:
    """Everything but the datasets (their place kept: ``datasets`` is None)."""
    out = {
        "report_version": REPORT_VERSION, "tool_version": __version__,
        "host": result.host, "inventory": result.inventory,
        "started_at": result.started_at, "finished_at": result.finished_at,
        "duration_seconds": round(result.duration_seconds, 3),
        "status": overall_status(result), "exit_code": result.exit_code,
        "totals": result.totals, "bytes_read": result.bytes_read,
        "locations": result.locations, "uncovered": result.uncovered, "shard": result.shard,
        "collections": result.collections, "coverage": result.coverage,
        "inventory_sha256": result.inventory_sha256, "merged_shards": result.merged_shards,
        "selection": result.selection, "policy_override": result.policy_override,
        "datasets": None,
    }
    if result.error is not None:
        out["error"] = result.error
    return out


def render_json(result: AuditResult, quiet: bool = False) -> str:
    """The whole report; ``quiet`` does not shorten JSON (scripts want it all).

    The same text as ``json.dumps(report_dict(result), indent=2)``, made one
    dataset at a time: with indent, json encodes in Python, as a list of
    small strings held until joined (2,000 datasets: some 45 MiB more)."""
    head = _head(result)
    if not result.datasets:
        head["datasets"] = []
        return _dumps(head) + "\n"
    marker = f"datasets-{os.urandom(8).hex()}"
    head["datasets"] = marker
    before, after = _dumps(head).split(f'"{marker}"', 1)
    # Items of a list two levels deep: each of their lines indented four spaces
    # (a JSON string never holds a raw newline).
    items = ",\n".join("    " + _dumps(_dataset(d)).replace("\n", "\n    ")
                       for d in result.datasets)
    return f"{before}[\n{items}\n  ]{after}\n"


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def schema(name: str = "report") -> dict[str, Any]:
    """A shipped JSON Schema: ``report`` (audit), ``status`` or ``history``."""
    text = (resources.files("threetwoone") / "reports" / f"{name}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded
