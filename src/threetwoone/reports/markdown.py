"""Markdown for a mail or a CI step summary (``$GITHUB_STEP_SUMMARY``, GitLab
and Gitea render the same GitHub-flavoured Markdown): a headline, the table,
then the problems that matter per dataset that did not pass.

Every name comes from an inventory or a storage listing, so none is trusted as
markup: text is backslash-escaped, paths are code spans, and a ``|`` can never
split a table cell.
"""

from __future__ import annotations

import re

from ..pathnames import display
from ..progress import human_bytes
from ..results import AuditResult, CopyState, DatasetResult, Status
from .common import copy_findings, has_overdue, headline, not_passing, plural, violation_steps

#: Table rows before only the datasets that did not pass are listed (a step
#: summary holds at most 1 MiB).
MAX_ROWS = 200

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md(text: str) -> str:
    """Plain text that Markdown shows as it is, on one line."""
    return _SPECIAL.sub(r"\\\1", text.replace("\r", " ").replace("\n", " "))


def code(text: str, in_table: bool = False) -> str:
    """A code span holding ``text`` exactly, whatever backticks it contains."""
    text = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each end when both ends have one (unless
    # the span is all spaces); a pad keeps such text, and text touching the fence.
    edges = text.startswith("`") or text.endswith("`") or (
        text.startswith(" ") and text.endswith(" ") and text.strip() != "")
    pad = " " if edges else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    # In a GFM table a pipe ends the cell even inside a code span, unless escaped.
    return span.replace("|", "\\|") if in_table else span


def _states(dataset: DatasetResult) -> str:
    counts: dict[str, int] = {}
    for copy in dataset.copies:
        counts[copy.state.value] = counts.get(copy.state.value, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items())


def _table(datasets: list[DatasetResult]) -> list[str]:
    lines = ["| dataset | policy | status | counted copies | media | off-site | copy states |",
             "|---|---|---|--:|--:|--:|---|"]
    for d in datasets:
        status = d.status.value if d.status is Status.PASS else f"**{d.status.value.upper()}**"
        lines.append(f"| {md(d.name)} | {md(d.policy)} | {status} | {d.counts['copies']} "
                     f"| {d.counts['media']} | {d.counts['offsite']} | {_states(d)} |")
    return lines


def _problems(dataset: DatasetResult) -> list[str]:
    lines = [f"### {md(dataset.name)}: {dataset.status.value}", ""]
    for violation, step in violation_steps(dataset):
        lines.append(f"- violation **{md(violation.rule)}**: {md(violation.message)}")
        if step:
            lines.append(f"  - next: {md(step)}")
    for found in copy_findings(dataset, extras=False):
        copy = found.copy
        detail = "".join(f" ({md(note)})" for note in found.notes)
        lines.append(f"- copy {code(display(copy.label))}: **{copy.state.value}**{detail}")
        if copy.next_step:
            lines.append(f"  - next: {md(copy.next_step)}")
        for problem in found.problems:
            about = f" ({md(problem.detail)})" if problem.detail else ""
            lines.append(f"  - {problem.problem.value}: {code(display(problem.path))}{about}")
        if found.more:
            lines.append(f"  - ... and {found.more} more (see the JSON report)")
    lines += [f"- warning: {md(w)}" for w in dataset.warnings]
    return [*lines, ""]


def render_markdown(result: AuditResult, quiet: bool = False) -> str:
    """The report; with ``quiet`` only the datasets that did not pass, and
    nothing at all when every dataset passed."""
    if result.error is not None:
        body = "\n".join(f"    {line}" for line in result.error.split("\n"))
        return (f"## threetwoone audit: ERROR (exit {result.exit_code})\n\n"
                f"Nothing was judged:\n\n{body}\n")
    trouble = not_passing(result)
    if quiet and not trouble and not any(has_overdue(d) for d in result.datasets):
        return ""
    rows = trouble if quiet or len(result.datasets) > MAX_ROWS else result.datasets
    summary = headline(result).split(": ", 1)[1]
    lines = [f"## threetwoone audit: {result.status.value.upper()}", "",
             f"{summary}; exit {result.exit_code}. Host {code(result.host)}, inventory "
             f"{code(result.inventory)}, started {result.started_at}, "
             f"{result.duration_seconds:.1f} s, {human_bytes(result.bytes_read)} read.", ""]
    lines += _table(rows[:MAX_ROWS])
    hidden = len(result.datasets) - len(rows[:MAX_ROWS])
    if hidden:
        lines += ["", f"{plural(hidden, 'more dataset')} not shown"
                  + (" (all pass)." if len(trouble) <= MAX_ROWS else ".")]
    lines.append("")
    # Datasets that did not pass, and passing ones with a copy that is not intact
    # (a surplus copy gone missing is worth a look before it is needed).
    worth = [d for d in result.datasets if d.status is not Status.PASS or has_overdue(d)
             or any(c.state is not CopyState.INTACT for c in d.copies)]
    for dataset in worth[:MAX_ROWS]:
        lines += _problems(dataset)
    return "\n".join(lines)
