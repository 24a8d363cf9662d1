"""The repair plan of a dataset, from its latest audit in the catalog.

1. Coverage: files with too few intact copies, and lost ones (replicas.py).
2. Repairs: every incomplete, corrupt, outdated or missing copy gets back the
   files it lacks, each from the best source that holds it intact (the same
   site first, then the fastest link): one action per (copy, source).
3. New copies: with the repaired copies counted as intact, the policy is
   judged again (policy.judge, the audit's own evaluation); for every rule
   still unmet, each location of the inventory that holds no copy of the
   dataset yet is tried as an extra intact copy.  A location qualifies when it
   meets or brings closer an unmet rule and breaks no rule that held (such as
   an ``allowed`` placement).  The recommended new copies are chosen greedily:
   the one that meets the most rules, then the fastest, until the policy holds
   or nothing helps.

Nothing here touches storage: the catalog says what each copy held.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..catalog import LatestAudit, RunCopy
from ..feasible import is_offsite
from ..inventory import Dataset, Inventory, Location, copy_key
from ..pathnames import copy_label
from ..policy import CopyView, Policy, Violation, judge
from ..states import CopyState
from ..words import plural
from . import replicas
from .commands import INLINE_FILES, End, FileList, command, inline
from .declaration import declaration_digest
from .routes import Estimate, Routes

#: Copy states a repair copies files into.
REPAIRABLE = ("incomplete", "corrupt", "outdated", "missing")


@dataclass(frozen=True)
class Action:
    kind: str  # repair | new-copy
    #: The copy repaired or made, ``location:path``.
    copy: str
    location: str
    path: str
    #: The intact copy the files come from (``location:path``).
    source: str
    files: int
    estimate: Estimate
    command: str
    #: Why this action: the copy's state, or the rules a new copy meets.
    reason: str


@dataclass(frozen=True)
class Candidate:
    location: str
    estimate: Estimate
    #: Rules it meets outright (others it only brings closer).
    meets: tuple[str, ...]


@dataclass(frozen=True)
class Unmet:
    """A rule still broken once every repair is done, and where a new copy helps."""

    violation: Violation
    candidates: list[Candidate]


@dataclass
class DatasetPlan:
    name: str
    policy: str
    #: The latest audit's verdict.
    status: str
    audited_at: str
    files: int = 0
    files_at_risk: int | None = None
    files_lost: int | None = None
    lost_bytes: int = 0
    actions: list[Action] = field(default_factory=list)
    unmet: list[Unmet] = field(default_factory=list)
    #: Things a copy cannot fix: unreachable copies, lost files, stale audits.
    notes: list[str] = field(default_factory=list)
    #: What to do once the actions are done (declare new copies, audit again).
    afterwards: list[str] = field(default_factory=list)
    #: Set when the inventory changed since the audit the plan is built from.
    out_of_date: str | None = None

    @property
    def nothing_to_do(self) -> bool:
        return (self.status == "pass" and not self.actions and not self.unmet
                and not self.files_at_risk and not self.files_lost and not self.notes)


#: A function that spells ``threetwoone plan-files`` for (dataset, target copy
#: label, source copy label).
Lister = Callable[[str, str, str], str]


class Planner:
    def __init__(self, inventory: Inventory, policies: dict[str, Policy],
                 db: sqlite3.Connection, throughput: dict[str, tuple[float, float]],
                 lister: Lister, clock: Callable[[], float] = time.time) -> None:
        self.inventory = inventory
        self.policies = policies
        self.db = db
        self.routes = Routes(inventory, throughput)
        self.lister = lister
        self.now = clock()

    def plan(self, audit: LatestAudit) -> DatasetPlan:
        dataset = self.inventory.datasets[audit.dataset]
        policy = self.policies[dataset.name]
        out = DatasetPlan(dataset.name, policy.name, audit.status, audit.started_at)
        if audit.declaration != declaration_digest(self.inventory, dataset, policy):
            out.out_of_date = (
                f"the inventory's declaration of {dataset.name} (its copies, their "
                f"locations or its policy) changed since its last audit at "
                f"{audit.started_at}: this plan may be out of date; audit it again")
        declared = {copy_key(dataset.name, c): c for c in dataset.copies}
        copies = [c for c in audit.copies if c.copy in declared]
        holders = replicas.holders((c.copy, c.state, bool(c.same_as or c.shares_storage))
                                   for c in copies)
        found = replicas.coverage(self.db, dataset.name, holders,
                                  policy.require.get("copies", 1))
        out.files, out.files_at_risk, out.files_lost = found.files, found.at_risk, found.lost
        out.lost_bytes = found.lost_bytes
        if not found.files:
            out.notes.append("no reference is recorded for this dataset (its primary could "
                             "not be read at the last audit): fix the primary and audit again")
            return out
        for copy in copies:
            if copy.state in ("unreachable", "error") and not copy.same_as:
                out.notes.append(
                    f"copy {copy.label} was {copy.state} at the last audit: what it holds is "
                    "not known; make it reachable and readable (see the audit's next step) "
                    "and audit again")
            elif copy.shares_storage and copy.state in REPAIRABLE:
                out.notes.append(f"copy {copy.label} {copy.shares_storage}: break the hard "
                                 "links (make it a copy of its own) before repairing it")
        repaired: set[str] = set()
        for copy in copies:
            if copy.state in REPAIRABLE and not copy.same_as and not copy.shares_storage:
                actions = self._restore(dataset, copy, copies, holders, "repair",
                                        f"copy is {copy.state}")
                out.actions += actions
                if actions:
                    repaired.add(copy.copy)
        if found.lost:
            out.notes.insert(0, (
                f"{plural(found.lost, 'file')} of {dataset.name} "
                f"{'has' if found.lost == 1 else 'have'} no intact copy on any copy reached: "
                "recover them from the producer or an older backup (list them with "
                f"`{self.lister(dataset.name, '', '')}`)"))
        self._new_copies(dataset, policy, copies, repaired, holders, out)
        if out.status != "pass" and not out.actions and not out.unmet and not out.notes:
            # max_age, a producer manifest at odds with itself, ...: nothing to copy.
            broken = "; ".join(audit.summary.get("violations", [])) or "see the audit report"
            step = ("follow the audit's next steps" if policy.max_age is None else
                    f"copies last read in full longer ago than the policy's max_age "
                    f"{policy.max_age_text} count again once read: audit with --verify full")
            out.notes.append(f"the last audit's verdict is {out.status} for reasons copying "
                             f"data does not fix ({broken}): {step}")
        return out

    # -- repairs -------------------------------------------------------------------
    def _sources(self, target: Location, holders: Sequence[str], copies: Sequence[RunCopy],
                 exclude: str | None) -> list[RunCopy]:
        by_key = {c.copy: c for c in copies}
        usable = [by_key[k] for k in holders if k != exclude and k in by_key]
        return sorted(usable, key=lambda c: self.routes.rank(
            target, self.inventory.locations[c.location], c.primary, c.position))

    def _restore(self, dataset: Dataset, target: RunCopy | None, copies: Sequence[RunCopy],
                 holders: Sequence[str], kind: str, reason: str,
                 location: Location | None = None, path: str | None = None
                 ) -> list[Action]:
        """One action per source for the files ``target`` lacks (every file for
        a copy to make, or a missing one)."""
        if target is not None:
            location = self.inventory.locations[target.location]
            path = target.path
        assert location is not None and path is not None
        sources, lacking = self._route(location, target, copies, holders)
        whole = lacking is None
        label = copy_label(location.name, path)
        actions = []
        for share in replicas.shares(self.db, dataset.name, lacking,
                                     [s.copy for s in sources], holders):
            if share.source is None:
                continue  # lost: said once per dataset
            source = sources[share.source]
            every = whole and share.files == self._reference_files(dataset.name)
            files = FileList()
            if not every:
                names = list(_first(replicas.paths(self.db, dataset.name, lacking,
                                                   [s.copy for s in sources], share.source),
                                    INLINE_FILES + 1))
                files = (FileList(names=names) if inline(names) else
                         FileList(lister=self.lister(dataset.name, label, source.label)))
            source_location = self.inventory.locations[source.location]
            actions.append(Action(
                kind=kind, copy=label, location=location.name, path=path,
                source=source.label, files=share.files,
                estimate=self.routes.estimate(source_location, location, share.bytes),
                command=command(End(source_location, source.path), End(location, path),
                                files),
                reason=reason))
        return actions

    def _route(self, location: Location, target: RunCopy | None, copies: Sequence[RunCopy],
               holders: Sequence[str]) -> tuple[list[RunCopy], str | None]:
        """The ranked sources for a copy on ``location``, and the key of the
        copy whose intact files need no copying (None: copy every file)."""
        sources = self._sources(location, holders, copies,
                                target.copy if target is not None else None)
        whole = target is None or target.state == "missing"
        return sources, None if whole or target is None else target.copy

    def files(self, audit: LatestAudit, target: str | None, source: str | None
              ) -> Iterator[str]:
        """The files of one action (``threetwoone plan-files``): those copy
        ``target`` (a label; a location that holds no copy yet for a new copy)
        lacks and takes from ``source``; with neither, the lost files."""
        dataset = self.inventory.datasets[audit.dataset]
        declared = {copy_key(dataset.name, c) for c in dataset.copies}
        copies = [c for c in audit.copies if c.copy in declared]
        holders = replicas.holders((c.copy, c.state, bool(c.same_as or c.shares_storage))
                                   for c in copies)
        if target is None:
            return replicas.paths(self.db, dataset.name, None, holders, None)
        copy = next((c for c in copies if c.label == target), None)
        name = copy.location if copy else target.split(":", 1)[0]
        if name not in self.inventory.locations:
            raise ValueError(f"no copy or location {target!r} in {dataset.name}")
        sources, lacking = self._route(self.inventory.locations[name], copy, copies, holders)
        labels = [s.label for s in sources]
        if source not in labels:
            raise ValueError(f"{source!r} is not an intact copy of {dataset.name} to copy "
                             f"from (sources: {', '.join(labels) or 'none'})")
        return replicas.paths(self.db, dataset.name, lacking, [s.copy for s in sources],
                              labels.index(source))

    def _reference_files(self, dataset: str) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM reference_files WHERE dataset = ?",
                                   (dataset,)).fetchone()[0])

    # -- new copies ----------------------------------------------------------------
    def _view(self, dataset: Dataset, location: Location, label: str, state: str,
              same_as: str | None = None, shares: str | None = None) -> CopyView:
        return CopyView(label=label, location=location.name, media=location.media,
                        site=location.site,
                        offsite=is_offsite(self.inventory.locations, dataset, location),
                        state=CopyState(state), same_as=same_as, shares_storage=shares,
                        attributes=location.settings, verified_at=self.now)

    def _new_copies(self, dataset: Dataset, policy: Policy, copies: Sequence[RunCopy],
                    repaired: set[str], holders: Sequence[str], out: DatasetPlan) -> None:
        views = [self._view(dataset, self.inventory.locations[c.location], c.label,
                            "intact" if c.copy in repaired else c.state, c.same_as,
                            c.shares_storage) for c in copies]
        judged = judge(policy, views, self.now).violations
        for violation in judged:
            if violation.rule == "allowed":
                out.notes.append(f"{violation.message} (no copy can fix that)")
        base = [v for v in judged if v.rule not in ("corrupt", "allowed")]
        if not base:
            return
        used = {c.location for c in dataset.copies}
        primary = dataset.primary
        path = primary.path
        free = [loc for name, loc in self.inventory.locations.items() if name not in used]
        candidates = self._candidates(dataset, policy, views, base, free, path, copies,
                                      holders)
        ranked = sorted(candidates, key=_by_time)
        out.unmet = [Unmet(v, [c[0] for c in ranked if v.rule in c[1] or v.rule in c[2]]
                           [:MAX_CANDIDATES]) for v in base]
        # Greedy: the location meeting the most rules, then the fastest; repeat.
        chosen: list[Location] = []
        remaining = list(base)
        while remaining and free:
            options = self._candidates(dataset, policy, views, remaining, free, path,
                                       copies, holders)
            if not options:
                break
            best = min(options, key=lambda c: (-len(c[1]), len(c[3]), _by_time(c)))
            location = self.inventory.locations[best[0].location]
            chosen.append(location)
            free = [loc for loc in free if loc.name != location.name]
            views = [*views, self._view(dataset, location, f"{location.name}:{path}",
                                        "intact")]
            remaining = best[3]
        for location in chosen:
            met = ", ".join(v.rule for v in base)
            out.actions += self._restore(dataset, None, copies, holders, "new-copy",
                                         f"new copy for: {met}", location, path)
        if chosen:
            declare = "; ".join(f"- {{location: {loc.name}, path: {path}}}" for loc in chosen)
            out.afterwards.append(f"declare each new copy in the inventory under "
                                  f"datasets.{dataset.name}.copies ({declare}), then audit "
                                  "it")
        if remaining:
            out.notes.append(
                "no location in the inventory can meet "
                + "; ".join(v.message for v in remaining)
                + ": add a location (another site, media or zone) to the inventory")

    def _candidates(self, dataset: Dataset, policy: Policy, views: list[CopyView],
                    unmet: list[Violation], free: Sequence[Location], path: str,
                    copies: Sequence[RunCopy], holders: Sequence[str]
                    ) -> list[tuple[Candidate, tuple[str, ...], tuple[str, ...],
                                    list[Violation]]]:
        """Each free location as an extra intact copy: (candidate, rules it
        meets, rules it brings closer, violations left), for those that help and
        break nothing that held."""
        before = {v.rule: v for v in unmet}
        prior = {v.rule: v.found for v in judge(policy, views, self.now).violations}
        size = self._total_bytes(dataset.name, holders)
        out = []
        for location in free:
            view = self._view(dataset, location, f"{location.name}:{path}", "intact")
            after = [v for v in judge(policy, [*views, view], self.now).violations
                     if v.rule != "corrupt"]
            left = {v.rule: v for v in after}
            if any(rule not in prior or (rule == "allowed" and v.found > prior[rule])
                   for rule, v in left.items()):
                continue  # it would break a rule that held (placement, ...)
            meets = tuple(rule for rule in before if rule not in left)
            closer = tuple(rule for rule in before
                           if rule in left and left[rule].found > before[rule].found)
            if not meets and not closer:
                continue
            sources = self._sources(location, holders, copies, None)
            if not sources:
                continue
            origin = self.inventory.locations[sources[0].location]
            estimate = self.routes.estimate(origin, location, size)
            out.append((Candidate(location.name, estimate, meets), meets, closer, after))
        return out

    def _total_bytes(self, dataset: str, holders: Sequence[str]) -> int:
        return sum(share.bytes for share in replicas.shares(self.db, dataset, None, [],
                                                             holders))


#: Locations listed per unmet rule.
MAX_CANDIDATES = 5


def _first(items: Iterator[str], count: int) -> list[str]:
    out: list[str] = []
    for item in items:
        out.append(item)
        if len(out) >= count:
            break
    return out


def _by_time(option: tuple[Candidate, tuple[str, ...], tuple[str, ...], list[Violation]]
             ) -> float:
    seconds = option[0].estimate.seconds
    return seconds if seconds is not None else float("inf")


__all__ = ["Action", "Candidate", "DatasetPlan", "Planner", "Unmet"]
