"""``threetwoone merge``: the JSON reports of a sharded audit (``audit --shard
K/N``) as one report and one exit code.

The merge refuses (exit 5, naming the files) anything that would make the
combined verdict a lie: a shard missing or present twice, reports of different
inventories or shard counts, a file that is not a shard report.  A PASS from a
merge means every shard ran and passed.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .errors import ThreeTwoOneError
from .inventory import Inventory
from .policy import Violation
from .results import (
    AuditResult,
    CopyResult,
    CopyState,
    DatasetResult,
    FileCounts,
    Problem,
    ProblemKind,
    ReferenceFiles,
    Status,
    Verification,
)

#: Largest shard report read (a report with a million problems is ~200 MB).
MAX_REPORT_BYTES = 1 << 30


class MergeError(ThreeTwoOneError):
    """The shard reports cannot be combined into a true verdict (exit 5)."""


def load_report(path: str) -> dict[str, Any]:
    """One shard's JSON report, checked to be a threetwoone shard report."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise MergeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_REPORT_BYTES:
        raise MergeError(f"{path}: larger than {MAX_REPORT_BYTES} bytes; not a report")
    try:
        report = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MergeError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(report, dict) or report.get("report_version") != 1:
        raise MergeError(f"{path}: not a threetwoone JSON report (report_version 1)")
    if not isinstance(report.get("shard"), str):
        raise MergeError(f"{path}: not the report of a sharded audit (no 'shard'; run "
                         "audit --shard K/N --report json:PATH)")
    for key, kind in (("inventory", str), ("datasets", list), ("exit_code", int)):
        if not isinstance(report.get(key), kind):
            raise MergeError(f"{path}: not a threetwoone JSON report (bad {key!r})")
    return report


def _shard(path: str, report: Mapping[str, Any]) -> tuple[int, int]:
    index, _sep, count = str(report["shard"]).partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise MergeError(f"{path}: shard {report['shard']!r} is not K/N")
    return int(index), int(count)


def check_shards(reports: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
    """The shard count, once every report is of one inventory and one count and
    every shard is there exactly once; else MergeError naming them."""
    inventories: dict[tuple[str, str | None], list[str]] = {}
    counts: dict[int, list[str]] = {}
    seen: dict[int, list[str]] = {}
    digests = {r["inventory_sha256"] for _p, r in reports if r.get("inventory_sha256")}
    for path, report in reports:
        index, count = _shard(path, report)
        # A shard that failed before reading the inventory has no digest of it.
        digest = report.get("inventory_sha256") if len(digests) > 1 else None
        inventories.setdefault((str(report["inventory"]), digest), []).append(path)
        counts.setdefault(count, []).append(path)
        seen.setdefault(index, []).append(path)
    if len(inventories) > 1:
        raise MergeError("reports of different inventories: " + "; ".join(
            f"{inv}{' (sha256 ' + digest[:12] + ')' if digest else ''}: {', '.join(paths)}"
            for (inv, digest), paths in inventories.items()))
    if len(counts) > 1:
        raise MergeError("reports of different shard counts: " + "; ".join(
            f"{count} shards: {', '.join(paths)}" for count, paths in sorted(counts.items())))
    count = next(iter(counts))
    twice = {index: paths for index, paths in seen.items() if len(paths) > 1}
    if twice:
        raise MergeError("shard reported twice: " + "; ".join(
            f"{index}/{count}: {', '.join(paths)}" for index, paths in sorted(twice.items())))
    missing = [f"{index}/{count}" for index in range(count) if index not in seen]
    if missing:
        raise MergeError(f"missing shard(s) {', '.join(missing)} of {count}: the merged "
                         "verdict would leave their datasets out")
    _check_selection(reports)
    _check_datasets(reports, count)
    return count


def _check_selection(reports: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Every shard limited alike by ``-d`` (or none), and judged by the same
    ``--policy`` (or the inventory's): a shard run with ``-d`` audited only
    some of its datasets (and shard 0 then checked no coverage); one re-run
    with a laxer policy would pass its datasets by another rule."""
    selections: dict[tuple[str, ...] | None, list[str]] = {}
    overrides: dict[str | None, list[str]] = {}
    for path, report in reports:
        chosen = report.get("selection")
        key = tuple(str(p) for p in chosen) if isinstance(chosen, list) else None
        selections.setdefault(key, []).append(path)
        policy = report.get("policy_override")
        overrides.setdefault(None if policy is None else str(policy), []).append(path)
    if len(selections) > 1:
        raise MergeError("shards audited different datasets (-d): " + "; ".join(
            f"{'-d ' + ' -d '.join(chosen) if chosen else 'every dataset'}: {', '.join(paths)}"
            for chosen, paths in selections.items()))
    if len(overrides) > 1:
        raise MergeError("shards judged by different policies (--policy): " + "; ".join(
            f"{f'--policy {policy}' if policy else 'the inventory policies'}: "
            f"{', '.join(paths)}" for policy, paths in overrides.items()))


def _check_datasets(reports: Sequence[tuple[str, Mapping[str, Any]]], count: int) -> None:
    """Each dataset reported once, by the shard its name hashes to: a report
    copied under another shard's name (or its 'shard' edited) would otherwise
    stand in for the shard that never reported."""
    from .selection import shard_of

    where: dict[str, str] = {}
    for path, report in reports:
        index = _shard(path, report)[0]
        for dataset in report["datasets"]:
            name = str(dataset.get("name")) if isinstance(dataset, dict) else ""
            if shard_of(name, count) != index:
                raise MergeError(f"{path}: dataset {name} is not of shard {index}/{count} "
                                 f"but of {shard_of(name, count)}/{count}: not the report "
                                 f"of shard {index}/{count}")
            if name in where:
                raise MergeError(f"dataset {name} reported twice: {where[name]}, {path}")
            where[name] = path


def inventory_order(inventory: Inventory | None) -> Callable[[str], tuple[int, int, str]]:
    """Sort key for dataset names in the order an audit reports them: declared
    datasets as written, then each collection's datasets by name.  (By name
    alone when the inventory could not be read.)"""
    declared = {name: i for i, name in enumerate(inventory.datasets)} if inventory else {}
    collections = list(inventory.collections) if inventory else []

    def key(name: str) -> tuple[int, int, str]:
        if name in declared:
            return (0, declared[name], "")
        head = name.split("/", 1)[0]
        if head in collections:
            return (1, collections.index(head), name)
        return (2, 0, name)
    return key


def merge(reports: Sequence[tuple[str, Mapping[str, Any]]],
          order: Callable[[str], Any] | None = None) -> AuditResult:
    """One AuditResult from every shard's report; datasets sorted by ``order``
    (see :func:`inventory_order`), else by name."""
    count = check_shards(reports)
    ordered = sorted(reports, key=lambda item: _shard(*item)[0])
    first = ordered[0][1]
    datasets = [dataset_from_dict(d) for _path, r in ordered for d in r["datasets"]]
    datasets.sort(key=lambda d: order(d.name) if order else d.name)
    starts = [_when(r.get("started_at")) for _p, r in ordered]
    ends = [_when(r.get("finished_at")) for _p, r in ordered]
    started = min(starts, key=lambda w: w[1])
    finished = max(ends, key=lambda w: w[1])
    result = AuditResult(
        inventory=str(first["inventory"]), started_at=started[0], finished_at=finished[0],
        datasets=datasets,
        host=", ".join(dict.fromkeys(str(r.get("host", "")) for _p, r in ordered)),
        duration_seconds=max(0.0, finished[1] - started[1]),
        inventory_sha256=first.get("inventory_sha256"), merged_shards=count)
    chosen = first.get("selection")
    result.selection = [str(p) for p in chosen] if isinstance(chosen, list) else None
    policy = first.get("policy_override")
    result.policy_override = None if policy is None else str(policy)
    result.locations = _merge_locations(ordered)
    result.collections = _merge_collections(ordered)
    result.coverage = [c for _p, r in ordered for c in r.get("coverage") or ()]
    result.uncovered = [u for _p, r in ordered for u in r.get("uncovered") or ()]
    errors = [(path, r) for path, r in ordered if r.get("error") is not None]
    if errors:
        result.error = "; ".join(f"shard {r['shard']} ({path}): {r['error']}"
                                 for path, r in errors)
        result.error_exit_code = max(int(r["exit_code"]) for _p, r in errors)
    return result


def _when(text: Any) -> tuple[str, float]:
    try:
        return str(text), datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return str(text), 0.0


def _merge_locations(reports: Sequence[tuple[str, Mapping[str, Any]]]
                     ) -> list[dict[str, str | None]]:
    """Each location once: unreachable if any shard could not reach it."""
    out: dict[str, dict[str, str | None]] = {}
    for _path, report in reports:
        for location in report.get("locations") or ():
            known = out.get(location["name"])
            if known is None or (known["state"] != "unreachable"
                                 and location["state"] == "unreachable"):
                shown = dict(location)
                if location["state"] == "unreachable":
                    shown["detail"] = f"{location.get('detail')} (shard {report['shard']})"
                out[location["name"]] = shown
    return list(out.values())


def _merge_collections(reports: Sequence[tuple[str, Mapping[str, Any]]]
                       ) -> list[dict[str, str | int | None]]:
    """Each shard lists every collection: the worst state, the most datasets
    found, and the gone ones of every shard (each remembers its own)."""
    rank = {"listed": 0, "incomplete": 1, "unreachable": 2}
    out: dict[str, dict[str, Any]] = {}
    for _path, report in reports:
        for listing in report.get("collections") or ():
            known = out.setdefault(listing["name"], {**listing, "gone": 0})
            known["gone"] += int(listing.get("gone", 0))
            known["datasets"] = max(int(known["datasets"]), int(listing["datasets"]))
            if rank.get(listing["state"], 2) > rank.get(known["state"], 2):
                known["state"], known["detail"] = listing["state"], listing["detail"]
    return list(out.values())


# -- a report's JSON back into results ---------------------------------------------

def dataset_from_dict(data: Mapping[str, Any]) -> DatasetResult:
    result = _dataset_from_dict(data)
    result.next_steps = {str(v["rule"]): str(v["next_step"])
                         for v in data.get("violations") or () if v.get("next_step")}
    files = data.get("reference_files")
    if files:
        result.reference_files = ReferenceFiles(**{k: int(files[k]) for k in (
            "manifests", "covered", "recorded")})
    result.files_at_risk = data.get("files_at_risk")
    result.files_lost = data.get("files_lost")
    return result


def _dataset_from_dict(data: Mapping[str, Any]) -> DatasetResult:
    return DatasetResult(
        name=str(data["name"]), policy=str(data["policy"]), status=Status(data["status"]),
        counts=dict(data.get("counts") or {}),
        violations=[Violation(str(v["rule"]), int(v["required"]), int(v["found"]),
                              str(v["message"])) for v in data.get("violations") or ()],
        warnings=list(data.get("warnings") or ()),
        copies=[copy_from_dict(c) for c in data.get("copies") or ()],
        reference=data.get("reference"), attested=list(data.get("attested") or ()),
        duration_seconds=float(data.get("duration_seconds") or 0.0))


def copy_from_dict(data: Mapping[str, Any]) -> CopyResult:
    files = data.get("files") or {}
    copy = CopyResult(
        location=str(data["location"]), path=str(data["path"]), media=str(data["media"]),
        site=str(data["site"]), primary=bool(data["primary"]), offsite=bool(data["offsite"]),
        state=CopyState(data["state"]),
        verification=_verification(data.get("verification")),
        counted=bool(data.get("counted")),
        files=FileCounts(**{k: int(files.get(k) or 0) for k in (
            "expected", "present", "missing", "corrupt", "extra", "unreadable",
            "outdated")}),
        bytes=int(data.get("bytes") or 0),
        problems=[Problem(_problem_path(p), ProblemKind(p["problem"]),
                          str(p.get("detail") or "")) for p in data.get("problems") or ()],
        detail=data.get("detail"), methods=list(data.get("methods") or ()),
        verified_files=int(data.get("verified_files") or 0),
        cached_files=int(data.get("cached_files") or 0), same_as=data.get("same_as"),
        verified_at=_when(data["last_full_verification"])[1]
        if data.get("last_full_verification") else None,
        bytes_read=int(data.get("bytes_read") or 0),
        overdue_files=data.get("overdue_files"))
    copy.problems_omitted = int(data.get("problems_omitted") or 0)
    copy.next_step = data.get("next_step")
    return copy


def _problem_path(problem: Mapping[str, Any]) -> str:
    """The exact name: the shown one is escaped when ``path_base64`` is set."""
    raw = problem.get("path_base64")
    return os.fsdecode(base64.b64decode(raw)) if raw else str(problem["path"])


def _verification(value: Any) -> Verification:
    try:
        return Verification(value)
    except ValueError:
        return Verification.NONE
