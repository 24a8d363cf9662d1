"""One self-contained HTML page for a person's weekly look: a datasets x
locations grid coloured by copy state, what is wrong with each dataset that did
not pass, and the last runs from the catalog as a small inline SVG chart.

Self-contained means no network at all: styles are inline, the chart is inline
SVG, there is no script, and a Content-Security-Policy forbids loading anything,
so the page opens the same from a mail attachment, a file share or an offline
laptop.  Every text is HTML-escaped; a file name cannot become markup.
"""

from __future__ import annotations

from html import escape

from .. import __version__
from ..pathnames import display
from ..progress import human_bytes
from ..results import (
    AuditResult,
    CopyResult,
    CopyState,
    DatasetResult,
    RunSummary,
    Status,
    Verification,
)
from .common import (
    STATE_ORDER,
    copy_findings,
    has_overdue,
    headline,
    locations_in_order,
    violation_steps,
)

#: Fill colour per copy state and dataset status (text is always shown too:
#: colour is never the only cue).
COLOURS = {
    "intact": "#2e7d32", "incomplete": "#f9a825", "corrupt": "#c62828", "missing": "#6a1b9a",
    "unreachable": "#546e7a", "error": "#ef6c00", "outdated": "#0277bd",
    "pass": "#2e7d32", "fail": "#c62828", "unknown": "#f9a825", "unfinished": "#9e9e9e",
}
_DARK_TEXT = {"incomplete", "unknown"}

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #212121; }
h1 { font-size: 1.5em; margin: 0 0 .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
.meta { color: #555; margin: 0; } code { font-size: .95em; background: #f3f3f3;
  padding: 0 .2em; border-radius: 3px; word-break: break-all; }
table { border-collapse: collapse; } th, td { padding: .3em .6em; text-align: left; }
table.grid th, table.grid td { border: 1px solid #ddd; }
table.grid thead th { background: #fafafa; vertical-align: bottom; }
table.grid th small { font-weight: normal; color: #666; }
.badge, td.state { color: #fff; font-weight: 600; white-space: nowrap; }
.badge { padding: .1em .5em; border-radius: 3px; }
td.none { color: #bbb; text-align: center; }
td.num { text-align: right; }
ul { margin: .2em 0; padding-left: 1.4em; } li { margin: .1em 0; }
.legend span { margin-right: .6em; } .warn { color: #555; }
.next { color: #0d47a1; font-weight: 600; }
table.runs td, table.runs th { border-bottom: 1px solid #eee; }
footer { margin-top: 2em; color: #888; font-size: .9em; }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _style(key: str) -> str:
    ink = "#212121" if key in _DARK_TEXT else "#fff"
    return f'style="background:{COLOURS[key]};color:{ink}"'


def badge(key: str, text: str | None = None) -> str:
    return f'<span class="badge {_e(key)}" {_style(key)}>{_e(text or key)}</span>'


def _anchor(index: int) -> str:
    return f"dataset-{index}"


def _cell(copies: list[CopyResult]) -> str:
    if not copies:
        return '<td class="none">&ndash;</td>'
    worst = min(copies, key=lambda c: STATE_ORDER.index(c.state))
    title = "; ".join(f"{display(c.label)}: {c.state.value}"
                      + (f" ({c.detail})" if c.detail else "") for c in copies)
    states = ", ".join(dict.fromkeys(
        c.state.value + (" (remembered)" if c.verification is Verification.REMEMBERED else "")
        for c in copies))
    counted = ""
    if worst.state is CopyState.INTACT and not any(c.counted for c in copies):
        counted = " (not counted)"  # the same storage as another copy, or not allowed
    return (f'<td class="state {worst.state.value}" {_style(worst.state.value)} '
            f'title="{_e(title)}">{_e(states)}{_e(counted)}</td>')


def _grid(result: AuditResult) -> list[str]:
    locations = locations_in_order(result)
    about: dict[str, str] = {}
    for dataset in result.datasets:
        for copy in dataset.copies:
            about.setdefault(copy.location, f"{copy.media} · {copy.site}")
    head = "".join(f"<th>{_e(name)}<br><small>{_e(about[name])}</small></th>"
                   for name in locations)
    out = ['<table class="grid">',
           f"<thead><tr><th>dataset</th><th>policy</th><th>status</th>"
           f"<th>counted copies</th>{head}</tr></thead>", "<tbody>"]
    for index, dataset in enumerate(result.datasets):
        name = _e(dataset.name)
        if _worth_a_section(dataset):
            name = f'<a href="#{_anchor(index)}">{name}</a>'
        cells = "".join(_cell([c for c in dataset.copies if c.location == location])
                        for location in locations)
        out.append(f'<tr><th scope="row">{name}</th><td>{_e(dataset.policy)}</td>'
                   f"<td>{badge(dataset.status.value)}</td>"
                   f'<td class="num">{dataset.counts.get("copies", 0)}</td>{cells}</tr>')
    out += ["</tbody></table>", '<p class="legend">' + "".join(
        badge(s.value) for s in reversed(STATE_ORDER)) + "</p>"]
    return out


def _worth_a_section(dataset: DatasetResult) -> bool:
    return dataset.status is not Status.PASS or has_overdue(dataset) or any(
        c.state is not CopyState.INTACT for c in dataset.copies)


def _dataset_section(index: int, dataset: DatasetResult) -> list[str]:
    out = [f'<h3 id="{_anchor(index)}">{_e(dataset.name)} {badge(dataset.status.value)}</h3>',
           "<ul>"]
    for violation, step in violation_steps(dataset):
        out.append(f"<li>violation <b>{_e(violation.rule)}</b>: {_e(violation.message)}"
                   + (f'<br><span class="next">next: {_e(step)}</span>' if step else "")
                   + "</li>")
    for found in copy_findings(dataset):
        copy = found.copy
        detail = "".join(f" &ndash; {_e(note)}" for note in found.notes)
        out.append(f"<li>copy <code>{_e(display(copy.label))}</code> "
                   f"{badge(copy.state.value)}{detail}")
        if copy.next_step:
            out.append(f'<br><span class="next">next: {_e(copy.next_step)}</span>')
        if found.problems:
            out.append("<ul>")
            for problem in found.problems:
                about = f" ({_e(problem.detail)})" if problem.detail else ""
                out.append(f"<li>{_e(problem.problem.value)}: "
                           f"<code>{_e(display(problem.path))}</code>{about}</li>")
            if found.more:
                out.append(f"<li>&hellip; and {found.more} more (see the JSON report)</li>")
            out.append("</ul>")
        out.append("</li>")
    out += [f'<li class="warn">warning: {_e(w)}</li>' for w in dataset.warnings]
    out.append("</ul>")
    return out


def history_svg(runs: list[RunSummary], width: int = 640, height: int = 120) -> str:
    """Stacked bars, oldest run on the left: datasets that passed (green), were
    undetermined (amber) and failed (red) per run; grey for a run that never finished."""
    if not runs:
        return "<p>No earlier runs in the catalog.</p>"
    ordered = list(reversed(runs))
    most = max(max(sum(r.totals.values()) for r in ordered), 1)
    step = min(width / len(ordered), 24.0)
    bar = max(step * 0.75, 1.0)
    usable = height - 6
    parts = [f'<svg class="history" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="datasets per status in the last {len(ordered)} runs">']
    for number, run in enumerate(ordered):
        x = number * step + (step - bar) / 2
        y = float(height - 2)
        title = f"{run.started_at}: " + (
            ", ".join(f"{n} {s}" for s, n in run.totals.items()) if run.status
            else "did not finish")
        parts.append(f'<g class="run"><title>{_e(title)}</title>')
        stacks = [(s, run.totals.get(s, 0)) for s in ("pass", "unknown", "fail")]
        if run.status is None or not any(n for _, n in stacks):
            stacks = [("unfinished", most)]
        for key, count in stacks:
            if not count:
                continue
            tall = usable * count / most
            y -= tall
            parts.append(f'<rect class="{key}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                         f'height="{tall:.1f}" fill="{COLOURS[key]}"/>')
        parts.append("</g>")
    parts.append(f'<line x1="0" y1="{height - 1}" x2="{step * len(ordered):.1f}" '
                 f'y2="{height - 1}" stroke="#999"/></svg>')
    caption = (f'<p class="meta">Datasets per status in the last {len(ordered)} runs, '
               f"oldest first ({_e(ordered[0].started_at)} to {_e(ordered[-1].started_at)}): "
               f'{badge("pass")} {badge("unknown")} {badge("fail")}</p>')
    return "".join(parts) + caption


def _runs_table(runs: list[RunSummary]) -> list[str]:
    out = ['<table class="runs"><thead><tr><th>started</th><th>status</th><th>exit</th>'
           '<th>pass</th><th>fail</th><th>unknown</th></tr></thead><tbody>']
    for run in runs[:10]:
        status = badge(run.status) if run.status in COLOURS else badge("unfinished",
                                                                       "did not finish")
        out.append(f"<tr><td>{_e(run.started_at)}</td><td>{status}</td>"
                   f"<td>{_e(run.exit_code if run.exit_code is not None else '')}</td>"
                   + "".join(f'<td class="num">{run.totals.get(s, 0)}</td>'
                             for s in ("pass", "fail", "unknown")) + "</tr>")
    out.append("</tbody></table>")
    return out


def render_html(result: AuditResult, quiet: bool = False) -> str:
    """The page; ``quiet`` changes nothing (a person opening it wants it all)."""
    title = (f"threetwoone audit: ERROR (exit {result.exit_code})" if result.error is not None
             else f"threetwoone audit: {result.status.value.upper()}")
    meta = (f"Host <code>{_e(result.host)}</code> · inventory "
            f"<code>{_e(result.inventory)}</code> · started {_e(result.started_at)} · "
            f"{result.duration_seconds:.1f} s · {_e(human_bytes(result.bytes_read))} read · "
            f"exit {result.exit_code}")
    summary = headline(result).split(": ", 1)[1]
    body = [f"<h1>{_e(title)}</h1>", f'<p class="meta">{_e(summary)}</p>',
            f'<p class="meta">{meta}</p>']
    if result.error is not None:
        body += ["<h2>Nothing was judged</h2>", f"<pre>{_e(result.error)}</pre>"]
    else:
        body += ["<h2>Copies</h2>", *_grid(result)]
        sections = [line for index, dataset in enumerate(result.datasets)
                    if _worth_a_section(dataset)
                    for line in _dataset_section(index, dataset)]
        if sections:
            body += ["<h2>What is wrong</h2>", *sections]
    body += ["<h2>Last runs</h2>", history_svg(result.history), *(
        _runs_table(result.history) if result.history else [])]
    body.append(f"<footer>threetwoone {_e(__version__)}</footer>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may be fetched: the page must look the same offline.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        *body, "</body>", "</html>", ""])
