"""The human report: one row per dataset, then the problems that matter.

Written to read well in a cron mail: plain text, no colour, every file name
escaped onto one line, long problem lists cut with a count of the rest.
"""

from __future__ import annotations

from ..pathnames import display, one_line
from ..results import AuditResult, DatasetResult, Status
from .common import copy_findings, coverage_lines, has_overdue, headline, plural, violation_steps


def _copies_cell(dataset: DatasetResult) -> str:
    states: dict[str, int] = {}
    for copy in dataset.copies:
        states[copy.state.value] = states.get(copy.state.value, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in states.items())


def _dataset_lines(dataset: DatasetResult, quiet: bool) -> list[str]:
    lines: list[str] = coverage_lines(dataset)
    for violation, step in violation_steps(dataset):
        lines.append(f"  violation {violation.rule}: {one_line(violation.message)}")
        if step:
            lines.append(f"    next: {one_line(step)}")
    for found in copy_findings(dataset, extras=not quiet, remembered=not quiet):
        copy = found.copy
        lines.append(f"  copy {display(copy.label)}: {copy.state.value}"
                     + "".join(f" - {one_line(note)}" for note in found.notes))
        if copy.next_step:
            lines.append(f"    next: {one_line(copy.next_step)}")
        for problem in found.problems:
            detail = f" ({one_line(problem.detail)})" if problem.detail else ""
            lines.append(f"    {problem.problem.value}: {display(problem.path)}{detail}")
        if found.more:
            lines.append(f"    ... and {found.more} more (see --format json)")
    if not quiet:
        if dataset.reference_files:
            lines.append(f"  reference: {dataset.reference_files}")
        lines.extend(f"  warning: {one_line(w)}" for w in dataset.warnings)
        lines.extend(f"  attested (not checked by an audit): {one_line(a)}"
                     for a in dataset.attested)
    return lines


def render_table(result: AuditResult, quiet: bool = False) -> str:
    """All datasets as a table; with ``quiet``, only datasets that did not pass,
    and nothing at all when everything passed (cron mails only on trouble)."""
    if result.error is not None:
        return "".join(f"threetwoone: {line}\n" for line in headline(result).split("\n"))
    # -q: what did not pass, and what passed with files overdue for a fixity re-read.
    shown = [d for d in result.datasets
             if not quiet or d.status is not Status.PASS or has_overdue(d)]
    run_lines = _run_lines(result)
    if not shown and not run_lines:
        return ""
    if not shown:
        return "\n".join([*run_lines, "", _summary(result)]) + "\n"
    from tabulate import tabulate  # 15 ms to import: only when there is a table to draw

    # Counts beyond copies/media/offsite (zones, immutable, ...) get a column when a
    # shown dataset's policy has that rule; "-" where another's has not.
    extra = list(dict.fromkeys(k for d in shown for k in d.counts
                               if k not in ("copies", "media", "offsite")))
    rows = []
    for dataset in shown:
        rows.append([one_line(dataset.name), one_line(dataset.policy),
                     dataset.status.value.upper(),
                     dataset.counts["copies"], dataset.counts["media"],
                     dataset.counts["offsite"],
                     *(dataset.counts.get(k, "-") for k in extra), _copies_cell(dataset)])
    out = [tabulate(rows, headers=["dataset", "policy", "status", "counted copies", "media",
                                   "offsite", *extra, "copy states"], tablefmt="simple")]
    details = []
    for dataset in shown:
        lines = _dataset_lines(dataset, quiet)
        if lines:
            details.append(f"{one_line(dataset.name)} ({dataset.status.value}):")
            details.extend(lines)
    if details:
        out.append("")
        out.extend(details)
    if run_lines:
        out.append("")
        out.extend(run_lines)
    out.append("")
    out.append(_summary(result))
    return "\n".join(out) + "\n"


def _summary(result: AuditResult) -> str:
    summary = {s: sum(1 for d in result.datasets if d.status is s) for s in Status}
    return (f"{plural(len(result.datasets), 'dataset')}: {summary[Status.PASS]} pass, "
            f"{summary[Status.FAIL]} fail, {summary[Status.UNKNOWN]} unknown")


def _run_lines(result: AuditResult) -> list[str]:
    """Findings about the run rather than one dataset: locations that could
    not be reached (once each, in full), collections that could not be listed,
    coverage that could not be checked, uncovered folders."""
    lines = []
    for location in result.locations:
        if location["state"] == "unreachable":
            lines.append(f"location {location['name']} ({location['kind']}): UNREACHABLE - "
                         f"{location['detail']}")
            if location.get("next_step"):
                lines.append(f"  next: {location['next_step']}")
    for listing in result.collections:
        if listing["state"] != "listed":
            lines.append(f"collection {listing['name']} ({listing['location']}): "
                         f"{str(listing['state']).upper()} - {listing['detail']}")
    for check in result.coverage:
        if check["state"] != "checked":
            lines.append(f"coverage {check['location']}:{display(str(check['path']))}: "
                         f"{str(check['state']).upper()} - {check['detail']}")
    from ..progress import human_bytes

    for folder in result.uncovered:
        since = f", since {folder['since']}" if folder.get("since") else ""
        lines.append(f"uncovered {folder['location']}:{display(str(folder['path']))}: "
                     f"{plural(int(folder['files'] or 0), 'file')}, "
                     f"{human_bytes(int(folder['bytes'] or 0))} in no dataset's copy{since}")
        if folder.get("detail"):
            lines.append(f"  {folder['detail']}")
        if folder.get("next_step"):
            lines.append(f"  next: {folder['next_step']}")
    return lines
