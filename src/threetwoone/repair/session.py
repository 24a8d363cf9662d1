"""Reading a plan's inputs from the catalog, for ``threetwoone plan`` and
``threetwoone plan-files``: the latest audit of each dataset, measured
throughputs, and how to spell the commands that refer back to threetwoone."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ..catalog import Catalog, LatestAudit
from ..catalogerrors import explained
from ..errors import ExitCode, ThreeTwoOneError
from ..inventory import Inventory
from ..policy import Policy
from .planner import DatasetPlan, Planner


class NoAudit(ThreeTwoOneError):
    """Requested datasets with no audit in the catalog (exit 5)."""

    exit_code = ExitCode.TOOL_FAILED


def no_audit_message(names: Sequence[str], inventory: str, state: str | None) -> str:
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    datasets = " ".join(f"-d {shlex.quote(n)}" for n in names[:10])
    where = f" --state {shlex.quote(state)}" if state else ""
    return (f"no audit in the catalog for {shown}: a plan is built from the latest audit; "
            f"run `threetwoone audit {shlex.quote(inventory)}{where} {datasets}` first")


@dataclass
class PlanInputs:
    inventory: Inventory
    policies: dict[str, Policy]
    #: The --state given (None: the default catalog), for commands printed.
    state: str | None
    #: The catalog's path.
    path: str


@contextmanager
def opened(inputs: PlanInputs) -> Iterator[Catalog]:
    """The catalog, if it exists: a plan never creates one."""
    if not os.path.exists(inputs.path):
        raise NoAudit(no_audit_message(list(inputs.policies), inputs.inventory.path,
                                       inputs.state) + f" (no catalog at {inputs.path})")
    with explained(inputs.path), Catalog(inputs.path) as catalog:
        yield catalog


def latest(catalog: Catalog, names: Sequence[str]) -> tuple[list[LatestAudit], list[str]]:
    """The latest usable audit of each dataset, and the names without one
    (never audited, or only by a threetwoone that recorded no copies)."""
    found, missing = [], []
    for name in names:
        audit = catalog.latest_audit(name)
        if audit is None or not audit.copies:
            missing.append(name)
        else:
            found.append(audit)
    return found, missing


def lister(inputs: PlanInputs) -> Callable[[str, str, str], str]:
    """How a command spells ``threetwoone plan-files`` for one action."""
    inventory = shlex.quote(os.path.abspath(inputs.inventory.path))
    state = f" --state {shlex.quote(os.path.abspath(inputs.path))}" if inputs.state else ""

    def spell(dataset: str, target: str, source: str) -> str:
        what = (f" --to {shlex.quote(target)} --from {shlex.quote(source)}" if target
                else " --lost")
        return f"threetwoone plan-files {inventory}{state} -d {shlex.quote(dataset)}{what}"

    return spell


def make_plans(inputs: PlanInputs, catalog: Catalog, audits: Sequence[LatestAudit],
               clock: Callable[[], float]) -> list[DatasetPlan]:
    planner = planner_for(inputs, catalog, clock)
    return [planner.plan(audit) for audit in audits]


def planner_for(inputs: PlanInputs, catalog: Catalog, clock: Callable[[], float]
                ) -> Planner:
    return Planner(inputs.inventory, inputs.policies, catalog.db, catalog.throughput(),
                   lister(inputs), clock)
