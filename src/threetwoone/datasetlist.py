"""What ``threetwoone datasets`` prints: every dataset an inventory expands
to, where it comes from, and whether its folder is still there."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .expansion import Expansion
from .inventory import Dataset
from .pathnames import display, one_line
from .policy import Policy


def _state(dataset: Dataset, expansion: Expansion) -> str:
    """``declared``, ``found``, ``gone`` or ``not confirmed`` (remembered, not
    found by an incomplete listing)."""
    if dataset.collection is None:
        return "declared"
    if dataset.gone:
        return "gone"
    for listing in expansion.collections:
        if listing.name == dataset.collection and dataset.name in listing.unconfirmed:
            return "not confirmed"
    return "found"


def dataset_rows(expansion: Expansion, policies: Mapping[str, Policy]
                 ) -> list[dict[str, Any]]:
    inventory = expansion.inventory
    return [{"name": name, "collection": dataset.collection,
             "policy": policies[name].name, "state": _state(dataset, expansion),
             "copies": [{"location": c.location, "path": display(c.path),
                         "primary": c is dataset.primary} for c in dataset.copies]}
            for name, dataset in inventory.datasets.items()]


def render_datasets(expansion: Expansion, policies: Mapping[str, Policy], fmt: str) -> str:
    rows = dataset_rows(expansion, policies)
    if fmt == "json":
        return json.dumps({"inventory": os.path.abspath(expansion.inventory.path),
                           "datasets": rows,
                           "collections": [c.as_dict() for c in expansion.collections],
                           "warnings": expansion.warnings}, indent=2,
                          ensure_ascii=False) + "\n"
    from tabulate import tabulate

    table = [(one_line(r["name"]), r["collection"] or "-", r["policy"], r["state"],
              next(f"{c['location']}:{c['path']}" for c in r["copies"] if c["primary"]),
              len(r["copies"])) for r in rows]
    out = tabulate(table, headers=["dataset", "collection", "policy", "state", "primary",
                                   "copies"]) + "\n" if table else ""
    for listing in expansion.collections:
        line = (f"collection {listing.name}: {len(listing.matches)} datasets on "
                f"{listing.location} ({listing.glob})")
        if listing.gone:
            line += f", {len(listing.gone)} gone"
        if listing.state != "listed":
            line += f"; {listing.state.upper()}: {listing.detail}"
        out += line + "\n"
    return out
