"""Prometheus text exposition format, for node_exporter's textfile collector.

Write it with ``--report prometheus:/var/lib/node_exporter/textfile/threetwoone.prom``:
the file is replaced atomically, so the collector never reads half of it, and it
is written also when the run ends with exit 4 or 5, so a dashboard never keeps
showing the last green.  Statuses and copy states are *state sets* (one series
per possible value, 1 for the current one, 0 for the others), the usual way to
expose an enum: ``threetwoone_dataset_status{status="fail"} == 1`` alerts.

No sample carries a timestamp: the textfile collector refuses them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..results import AuditResult, CopyResult, CopyState, Status

Labels = dict[str, str]


def escape_label(value: str) -> str:
    """A label value as the exposition format wants it: backslash, double quote
    and line feed escaped (``\\\\``, ``\\"``, ``\\n``); everything else is UTF-8."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: Labels, value: float) -> str:
    text = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
    number = str(int(value)) if float(value).is_integer() else repr(float(value))
    return f"{name}{{{text}}} {number}" if text else f"{name} {number}"


class _Family:
    """One metric: its HELP and TYPE lines, then its samples (each series once)."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self.samples: dict[tuple[tuple[str, str], ...], float] = {}

    def add(self, value: float, **labels: str) -> None:
        # A series may appear once: two copies declared on the same location and
        # path (counted once anyway) would otherwise repeat one.
        self.samples.setdefault(tuple(labels.items()), value)

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        for labels, value in self.samples.items():
            yield _sample(self.name, dict(labels), value)


def _copy_labels(dataset: str, copy: CopyResult) -> dict[str, str]:
    # ``path`` keeps two copies of one dataset on one location apart.
    return {"dataset": dataset, "location": copy.location, "path": copy.path}


def render_prometheus(result: AuditResult, quiet: bool = False) -> str:
    """The whole exposition; ``quiet`` changes nothing (a scraper wants it all)."""
    status = _Family("threetwoone_dataset_status",
                     "Verdict of the latest audit per dataset as a state set: 1 for the "
                     "current status (pass, fail, unknown), 0 for the others.")
    states = _Family("threetwoone_copy_state",
                     "State of each copy in the latest audit as a state set: 1 for the "
                     "current state, 0 for the others.")
    counted = _Family("threetwoone_dataset_copies_counted",
                      "Copies that count toward the dataset's policy: intact, not the same "
                      "storage as another, allowed by the policy.")
    verified = _Family("threetwoone_copy_last_full_verification_timestamp_seconds",
                       "When the copy's least recently verified file was last read in "
                       "full (Unix time); absent when never.")
    for dataset in result.datasets:
        for value in Status:
            status.add(1 if dataset.status is value else 0, dataset=dataset.name,
                       policy=dataset.policy, status=value.value)
        counted.add(dataset.counts.get("copies", 0), dataset=dataset.name)
        for copy in dataset.copies:
            labels = _copy_labels(dataset.name, copy)
            for state in CopyState:
                states.add(1 if copy.state is state else 0, **labels, state=state.value)
            if copy.verified_at is not None:
                verified.add(copy.verified_at, **labels)
    finished = datetime.fromisoformat(result.finished_at).timestamp()
    run = [
        (_Family("threetwoone_audit_last_run_timestamp_seconds",
                 "When the latest audit finished (Unix time), whatever its outcome."),
         finished),
        (_Family("threetwoone_audit_duration_seconds", "How long the latest audit took."),
         result.duration_seconds),
        (_Family("threetwoone_audit_exit_code",
                 "Exit code of the latest audit: 0 pass, 1 fail, 3 undetermined, 4 invalid "
                 "inventory or policy, 5 the tool failed."), result.exit_code),
        (_Family("threetwoone_audit_bytes_read",
                 "Bytes read and hashed by the latest audit (here or on storage hosts)."),
         result.bytes_read),
        (_Family("threetwoone_uncovered_folders",
                 "Folders under a coverage path that lie in no dataset's copy."),
         len(result.uncovered)),
    ]
    lines: list[str] = []
    for family in (status, states, counted, verified):
        if family.samples:
            lines.extend(family.lines())
    for family, number in run:
        family.add(number)
        lines.extend(family.lines())
    return "\n".join(lines) + "\n"
