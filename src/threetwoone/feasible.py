"""Datasets that can never pass their policy, whatever the storage holds.

An inventory that declares two copies for a policy that wants three, or every
copy at one site for a policy that wants one off-site, is valid: it can only
ever fail.  ``validate`` and ``audit`` say so per dataset, so the steward fixes
the inventory instead of chasing storage.  The check is the audit's own
judgement (policy.judge) on the best case: every declared copy intact and
freshly verified, copies declared at one address counted once, so it follows
the policy's rules exactly (sites and media compared as vocabulary.py says,
off-site copies spanning distinct sites, placement).
"""

from __future__ import annotations

from collections.abc import Mapping

from .inventory import Dataset, Inventory, Location, declared_twice
from .pathnames import copy_label, display
from .policy import CopyView, Policy, judge
from .states import CopyState, Status
from .vocabulary import value_key
from .yamlload import join


def is_offsite(locations: Mapping[str, Location], dataset: Dataset,
               location: Location) -> bool:
    """At another site than the primary's, compared as vocabulary says."""
    return value_key(location.site) != value_key(locations[dataset.primary.location].site)


def best_case(inventory: Inventory, dataset: Dataset) -> list[CopyView]:
    """Every declared copy as the audit would see it if it were intact and had
    just been read in full."""
    twice = declared_twice(inventory.locations, dataset)
    views = []
    for copy in dataset.copies:
        location = inventory.locations[copy.location]
        first = twice.get(copy.index)
        views.append(CopyView(
            label=copy_label(copy.location, copy.path), location=copy.location,
            media=location.media, site=location.site,
            offsite=is_offsite(inventory.locations, dataset, location), state=CopyState.INTACT,
            same_as=copy_label(first.location, first.path) if first else None,
            attributes=location.settings, verified_at=0.0))
    return views


def never_passing(inventory: Inventory, dataset: Dataset, policy: Policy) -> str | None:
    """Why ``dataset`` cannot pass ``policy`` even with every declared copy
    intact, in words; None when it can."""
    verdict = judge(policy, best_case(inventory, dataset), now=0.0)
    if verdict.status is Status.PASS:
        return None
    return (f"can never pass policy {policy.name}, even with every declared copy intact: "
            + "; ".join(v.message for v in verdict.violations)
            + "; change the inventory (copies, sites, media, zones) or the policy")


def inventory_never_passing(inventory: Inventory, policies: Mapping[str, Policy]
                            ) -> list[str]:
    """One warning per dataset in ``policies`` that can never pass, naming the
    inventory file, the dataset's line and key path."""
    out = []
    for name, policy in policies.items():
        reason = never_passing(inventory, inventory.datasets[name], policy)
        if reason:
            keypath = join("datasets", name)
            line = inventory.document.line(keypath) if inventory.document else None
            where = f"{display(inventory.path)}:{line}" if line else display(inventory.path)
            out.append(f"{where}: {display(keypath)}: {reason}")
    return out
