"""The plan as a table (for people) and as JSON (``plan.schema.json``)."""

from __future__ import annotations

import base64
import json
import os
from importlib import resources
from typing import Any

from .. import __version__
from ..pathnames import display, one_line, raw_base64
from ..units import format_bytes
from ..words import plural
from .planner import Action, DatasetPlan
from .routes import Estimate

PLAN_VERSION = 1


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _estimate(estimate: Estimate) -> dict[str, Any]:
    return {"bytes": estimate.bytes, "network_seconds": _seconds(estimate.network_seconds),
            "network_basis": estimate.network_basis,
            "courier_seconds": _seconds(estimate.courier_seconds),
            "courier_disks": estimate.disks, "route": estimate.route,
            "summary": estimate.words()}


def _action(action: Action) -> dict[str, Any]:
    out = {"kind": action.kind, "copy": action.copy, "location": action.location,
           "path": display(action.path), "from": action.source, "files": action.files,
           **_estimate(action.estimate), "command": one_line(action.command),
           "reason": action.reason}
    # A name that is not UTF-8 or holds controls is shown escaped; the exact
    # bytes ride along (a shown command would copy to a folder of another name).
    raw = raw_base64(action.path)
    if raw is not None:
        out["path_base64"] = raw
    if _escaped(action.command):
        out["command_base64"] = base64.b64encode(os.fsencode(action.command)).decode("ascii")
    return out


def _escaped(command: str) -> bool:
    """Whether ``command`` as shown is not the command (a name in it holds
    controls or bytes that are not UTF-8)."""
    return one_line(command) != command


def _dataset(plan: DatasetPlan) -> dict[str, Any]:
    return {
        "name": plan.name, "policy": plan.policy, "status": plan.status,
        "audited_at": plan.audited_at, "out_of_date": plan.out_of_date,
        "nothing_to_do": plan.nothing_to_do, "files": plan.files,
        "files_at_risk": plan.files_at_risk, "files_lost": plan.files_lost,
        "lost_bytes": plan.lost_bytes, "notes": plan.notes, "afterwards": plan.afterwards,
        "actions": [_action(a) for a in plan.actions],
        "unmet": [{"rule": u.violation.rule, "required": u.violation.required,
                   "found": u.violation.found, "message": u.violation.message,
                   "candidates": [{"location": c.location, "meets": list(c.meets),
                                   **_estimate(c.estimate)} for c in u.candidates]}
                  for u in plan.unmet],
    }


def render_json(plans: list[DatasetPlan], inventory: str, catalog: str, generated_at: str,
                unaudited: list[str]) -> str:
    out = {"plan_version": PLAN_VERSION, "tool_version": __version__,
           "inventory": inventory, "catalog": catalog, "generated_at": generated_at,
           "unaudited": unaudited, "datasets": [_dataset(p) for p in plans]}
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


def schema() -> dict[str, Any]:
    text = (resources.files("threetwoone") / "repair" / "plan.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _action_lines(number: int, action: Action) -> list[str]:
    verb = "repair" if action.kind == "repair" else "new copy on"
    return [f"  {number}. {verb} {one_line(action.copy)} ({one_line(action.reason)}): "
            f"{plural(action.files, 'file')} from {one_line(action.source)}",
            f"     {one_line(action.estimate.words())}",
            f"     $ {one_line(action.command)}"] + (
        ["     (names in it are shown escaped, not as they are: the exact command is "
         "command_base64 in --format json)"] if _escaped(action.command) else [])


def render_table(plans: list[DatasetPlan], unaudited: list[str]) -> str:
    out: list[str] = []
    for plan in plans:
        head = f"{one_line(plan.name)} ({plan.status}, audited {plan.audited_at})"
        if plan.nothing_to_do:
            out.append(f"{head}: nothing to do")
            continue
        out.append(f"{head}:")
        if plan.out_of_date:
            out.append(f"  OUT OF DATE: {one_line(plan.out_of_date)}")
        if plan.files_lost:
            out.append(f"  LOST: {plural(plan.files_lost, 'file')} "
                       f"({format_bytes(plan.lost_bytes)}) with no intact copy anywhere")
        if plan.files_at_risk:
            out.append(f"  at risk: {plan.files_at_risk} of {plural(plan.files, 'file')} "
                       "with fewer intact copies than the policy requires")
        out.extend(f"  note: {one_line(note)}" for note in plan.notes)
        for number, action in enumerate(plan.actions, 1):
            out.extend(_action_lines(number, action))
        out.extend(f"  then: {one_line(step)}" for step in plan.afterwards)
        for unmet in plan.unmet:
            head = (f"  unmet {unmet.violation.rule} (found {unmet.violation.found}, "
                    f"required {unmet.violation.required})")
            if not unmet.candidates:
                out.append(f"{head}: no location of the inventory qualifies")
                continue
            out.append(f"{head}, locations that would help, fastest first:")
            out.extend(f"    {one_line(c.location)}: {one_line(c.estimate.words())}"
                       for c in unmet.candidates)
    todo = sum(1 for p in plans if not p.nothing_to_do)
    out.append("")
    out.append(f"{plural(len(plans), 'dataset')}: {todo} with something to do, "
               f"{len(plans) - todo} with nothing to do"
               + (f"; never audited: {', '.join(map(one_line, unaudited))}"
                  if unaudited else ""))
    return "\n".join(out) + "\n"
