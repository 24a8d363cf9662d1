"""The Auditor: establish each dataset's reference, audit every copy against it,
and judge the dataset against its policy.  It prints nothing; the CLI renders.

The order of work per dataset:

1. the reference, from ``reference.ReferenceKeeper``: the producer manifests
   (read from the primary once it is listed) with what is recorded for the files
   they do not name, else the catalog's, else the primary's content hashed now
   and recorded;
2. each copy: list it, compare names and sizes with the reference, hash what
   must be hashed, and give it one state (README "Verdicts");
3. de-duplicate copies that are the same storage, count, evaluate the policy.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from . import nextsteps, offline
from .backends import (
    Backend,
    BackendError,
    CopyFailed,
    LocationUnreachable,
    NotAFolder,
    RootInfo,
)
from .catalog import Catalog, RunCopy, default_state_path, now_iso
from .checksums import DEFAULT_ALGORITHM
from .connections import Connections
from .copyaudit import CopyContext, compare, list_copy
from .copymerge import FullReads
from .events import Progress as Progress
from .feasible import is_offsite, never_passing
from .inventory import CopySpec, Dataset, Inventory, Location, copy_key, declared_twice
from .listing import Listing
from .pathnames import display
from .policy import CopyView, Policy, Violation, judge
from .reference import Reference, ReferenceKeeper
from .repair.declaration import declaration_digest
from .results import (
    AuditResult,
    CopyResult,
    CopyState,
    DatasetResult,
    Status,
)
from .schedule import VerifyPlan
from .vocabulary import spelling_warnings, warnings_for
from .words import plural
from .workset import Workset


@dataclass
class AuditOptions:
    #: Files hashed at once per copy; None: the backend's default (one process
    #: per CPU for local copies, one transfer for remote ones).
    workers: int | None = None
    plan: VerifyPlan = field(default_factory=VerifyPlan)
    force_download: bool = False
    clock: Callable[[], float] = time.time
    #: Who ran it, recorded with an accepted reference.
    user: str | None = None
    #: Datasets audited at once (--parallel): each location still serves one
    #: copy at a time, so up to this many locations are busy together.
    parallel: int = 1


class Auditor:
    def __init__(self, inventory: Inventory, policies: Mapping[str, Policy],
                 catalog: Catalog, options: AuditOptions | None = None,
                 progress: Progress | None = None,
                 connections: Connections | None = None) -> None:
        self.inventory = inventory
        self.policies = policies
        self.catalog = catalog
        self.options = options or AuditOptions()
        self.progress = progress or Progress()
        #: Shared with collection expansion and coverage when the caller owns them.
        self.connections = connections or Connections()
        self._owns_connections = connections is None
        self._started = self.options.clock()
        self._shares: list[tuple[int, int, int]] = []
        #: Per copy whose rows this run wrote: each reference file's last full read.
        self._full_reads: dict[int, FullReads] = {}
        self._listed: dict[int, int] = {}
        self.workset = Workset(catalog.db, shared=catalog.shared)
        #: The one writer of reference rows.
        self.keeper = ReferenceKeeper(catalog, self.options.user)
        #: Sites, media and zones spelt apart but compared as one, shown with the
        #: datasets that have copies there.
        self._spelling = spelling_warnings(inventory)

    # -- backends ---------------------------------------------------------------
    def backend(self, location: Location) -> Backend:
        """The connected backend for ``location``; connect once per run."""
        return self.connections.get(location)

    def close(self) -> None:
        if self._owns_connections:
            self.connections.close()

    # -- the run ------------------------------------------------------------------
    def run(self, datasets: Sequence[str] | None = None,
            before_recording: Callable[[AuditResult], None] | None = None) -> AuditResult:
        """Audit ``datasets`` (all when None).  ``before_recording`` may add
        run-wide findings (uncovered folders, ...) to the result before its
        status is recorded in the catalog."""
        started = now_iso()
        began = time.monotonic()
        names = list(self.inventory.datasets) if datasets is None else list(datasets)
        # Absolute: forget tells which inventory last audited a dataset.
        run_id = self.catalog.start_run(os.path.abspath(self.inventory.path))
        try:
            results = self._audit_all([self.inventory.datasets[name] for name in names])
            result = AuditResult(os.path.abspath(self.inventory.path), started, now_iso(),
                                 results,
                                 host=os.uname().nodename,  # gethostname(), without socket
                                 duration_seconds=time.monotonic() - began)
            if before_recording is not None:
                before_recording(result)
        finally:
            self.close()
        self.catalog.finish_run(run_id, result.status.value, result.exit_code, (
            (d.name, d.policy, d.status.value, _summary(d)) for d in results))
        self._record_plan_facts(run_id, results)
        return result

    def _audit_all(self, datasets: Sequence[Dataset]) -> list[DatasetResult]:
        """Every dataset's verdict, in the order given.  With ``parallel`` > 1,
        several datasets at once, each worker thread with a catalog connection
        of its own; a location serves one copy at a time (Connections.hold), so
        while one dataset's primary is read on the NAS the previous dataset's
        backup is read on the backup host.  Each dataset is audited exactly as
        in a serial run: the same verdicts, in the same order."""
        workers = min(self.options.parallel, len(datasets))
        if workers <= 1:
            return [self._timed(dataset) for dataset in datasets]
        local = threading.local()
        made: list[Auditor] = []
        guard = threading.Lock()

        def audit(dataset: Dataset) -> DatasetResult:
            auditor: Auditor | None = getattr(local, "auditor", None)
            if auditor is None:
                auditor = Auditor(self.inventory, self.policies,
                                  Catalog.for_worker(self.catalog), self.options,
                                  self.progress, self.connections)
                auditor._started = self._started  # one --time-limit for the run
                local.auditor = auditor
                with guard:
                    made.append(auditor)
            return auditor._timed(dataset)

        results: list[DatasetResult | None] = [None] * len(datasets)
        failed: list[BaseException] = []
        todo = iter(range(len(datasets)))

        def work() -> None:
            while True:
                with guard:
                    index = None if failed else next(todo, None)
                if index is None:
                    return
                try:
                    results[index] = audit(datasets[index])
                except BaseException as exc:  # re-raised in the calling thread
                    with guard:
                        failed.append(exc)
                    return

        # Plain threads, not concurrent.futures: a local audit starts faster.
        threads = [threading.Thread(target=work, name=f"dataset-{n}", daemon=True)
                   for n in range(workers)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        except BaseException as exc:
            # ^C: no new dataset starts; the running ones finish.
            with guard:
                failed.append(exc)
            for thread in threads:
                if thread.ident is not None:
                    thread.join()
            raise
        finally:
            for auditor in made:
                auditor.catalog.close()
        if failed:
            raise failed[0]
        done = [result for result in results if result is not None]
        assert len(done) == len(datasets), "a dataset was left unaudited"
        return done

    def _timed(self, dataset: Dataset) -> DatasetResult:
        began = time.monotonic()
        result = self.audit_dataset(dataset)
        result.duration_seconds = time.monotonic() - began
        return result

    def _record_plan_facts(self, run_id: int, results: Sequence[DatasetResult]) -> None:
        """What ``threetwoone plan`` reads later instead of the storage: each
        dataset's declaration digest, each copy's state and content, and each
        location's read throughput this run."""
        declarations, copies = {}, []
        throughput: dict[str, tuple[int, float]] = {}
        for result in results:
            dataset = self.inventory.datasets[result.name]
            declarations[result.name] = declaration_digest(
                self.inventory, dataset, self.policies[result.name])
            for spec, copy in zip(dataset.copies, result.copies, strict=True):
                copies.append(RunCopy(
                    result.name, spec.index, copy_key(result.name, spec), copy.location,
                    copy.path, copy.primary, copy.state.value, copy.counted, copy.same_as,
                    copy.shares_storage, copy.files.present, copy.bytes))
                if copy.bytes_read and not copy.same_as:
                    size, seconds = throughput.get(copy.location, (0, 0.0))
                    throughput[copy.location] = (size + copy.bytes_read,
                                                 seconds + copy.read_seconds)
        self.catalog.record_plan_facts(run_id, declarations, copies, throughput,
                                       self.options.clock())

    def _file_coverage(self, dataset: Dataset, result: DatasetResult) -> None:
        """``files_at_risk`` and ``files_lost`` (repair/replicas.py).  Free when
        enough whole copies are intact: every file then has enough copies."""
        if result.reference in ("none", None) or any(
                v.rule == "reference" for v in result.violations):
            return
        needed = self.policies[dataset.name].require.get("copies", 1)
        whole = [c for c in result.copies if c.state is CopyState.INTACT
                 and not c.same_as and not c.shares_storage]
        if len(whole) >= needed:
            result.files_at_risk = result.files_lost = 0
            return
        from .repair.replicas import coverage, holders  # only when copies are lacking

        keys = holders((copy_key(dataset.name, spec), copy.state.value,
                        bool(copy.same_as or copy.shares_storage))
                       for spec, copy in zip(dataset.copies, result.copies, strict=True))
        found = coverage(self.catalog.db, dataset.name, keys, needed)
        result.files_at_risk, result.files_lost = found.at_risk, found.lost

    def audit_dataset(self, dataset: Dataset) -> DatasetResult:
        policy = self.policies[dataset.name]
        warnings: list[str] = []
        primary = dataset.primary
        warnings.extend(warnings_for(self._spelling, {c.location for c in dataset.copies}))
        hopeless = never_passing(self.inventory, dataset, policy)
        if hopeless:
            warnings.append(hopeless)
        #: storage identity -> the first copy found there, to count it once
        identities: dict[str, CopyResult] = {}
        results: dict[int, CopyResult] = {}
        # Copies declared at an earlier copy's address are not audited: they take
        # its verdict and count once, also when their location cannot be reached.
        twice = declared_twice(self.inventory.locations, dataset)
        # Hard links between the dataset's copies: (copy, other copy, files shared),
        # and files listed per copy that has any file with several names.
        self.workset.reset_storage()
        self._shares.clear()
        self._listed.clear()
        self._full_reads.clear()
        reference = self.keeper.begin(dataset)
        if reference.made_from is not None:
            # The reference is established (or made) from the primary: audit it first.
            results[primary.index] = self._audit_copy(
                dataset, primary, reference, identities,
                algorithms=self._reference_algorithms(dataset))
        warnings.extend(reference.notes)
        for copy in dataset.copies:
            if copy.index not in results and copy.index not in twice:
                results[copy.index] = self._audit_copy(dataset, copy, reference, identities)
        for index, first in twice.items():
            results[index] = self._same_address(dataset, dataset.copies[index],
                                                results[first.index])
        copies = [results[c.index] for c in dataset.copies]
        self._hard_links(copies)
        for copy_result in copies:
            warnings.extend(copy_result.notes)
            if copy_result.same_as == copy_result.label:
                warnings.append(f"copy {copy_result.label} is declared twice; it counts once")
            elif copy_result.same_as:
                warnings.append(f"copy {copy_result.label} is the same storage as "
                                f"{copy_result.same_as}; it counts once")
            if copy_result.shares_storage:
                warnings.append(f"copy {copy_result.label} {copy_result.shares_storage}")
        if reference.new and reference.count:
            warnings.append(f"reference recorded from the primary copy "
                            f"{results[primary.index].label} "
                            f"({plural(reference.count, 'file')}); "
                            "later audits compare every copy with it")
        self._count_overdue(dataset, copies)
        judged = self._judge(dataset, policy, reference, copies, warnings)
        if reference.new and reference.count and reference.source == "primary":
            judged.reference = "recorded"  # a new baseline: the CLI says so, even with -q
        self._file_coverage(dataset, judged)
        nextsteps.annotate(judged, dataset, self.inventory, self._commands(),
                           reference.invalid)
        return judged

    def _count_overdue(self, dataset: Dataset, copies: Sequence[CopyResult]) -> None:
        """Per copy, the reference files not read in full within the fixity
        interval (after this run's reads): the report warns of them, also with -q."""
        now, interval = self.options.clock(), self.options.plan.interval
        for spec, copy in zip(dataset.copies, copies, strict=True):
            if copy.same_as:
                continue
            full_reads = self._full_reads.get(spec.index)
            if full_reads is not None:  # as the catalog has it now, without asking it
                copy.overdue_files = full_reads.overdue(now - interval)
                # The damaged files are never read in full, so among the overdue.
                copy.overdue_held = copy.overdue_files - full_reads.damaged
                continue
            rows = self.catalog.copy_status(interval, now, copy_key(dataset.name, spec))
            copy.overdue_files = copy.overdue_held = rows[0].overdue if rows else None

    def _commands(self) -> nextsteps.Commands:
        """How a next step spells threetwoone commands for this inventory and catalog."""
        state = os.path.abspath(self.catalog.path)
        default = os.path.abspath(default_state_path())
        return nextsteps.Commands(os.path.abspath(self.inventory.path),
                                  None if state == default else state)

    def _copy_listed(self, dataset: Dataset, copy: CopySpec, result: CopyResult,
                     backend: Backend, listing: Listing) -> None:
        """The copy's listing is complete: its totals to the progress line, its
        files with several names noted."""
        self.progress.copy(dataset.name, result.label, listing.files, listing.bytes)
        if backend.ident_is_storage:
            self._note_storage(copy, listing)

    def _note_storage(self, copy: CopySpec, listing: Listing) -> None:
        """Remember which stored files (device and inode) this copy shares with
        the copies of the dataset audited before it (see ``_hard_links``)."""
        listed, shares = self.workset.note_storage(copy.index, listing)
        if listed:
            self._listed[copy.index] = listed
        self._shares += [(copy.index, other, count) for other, count in shares]

    def _hard_links(self, copies: Sequence[CopyResult]) -> None:
        """Copies whose files are hard links to another copy's (``cp -al``,
        rsnapshot) hold no bytes of their own for those files.  The rule: of two
        copies that share even one file (same device and inode), the one listed
        later in the inventory does not count; the warning names both and how
        many files they share.  Strict on purpose: each shared file has one
        stored copy, whatever the paths say."""
        for first, second, shared in sorted(self._shares):
            earlier, later = sorted((first, second))
            copy, other = copies[later], copies[earlier]
            if copy.shares_storage:
                continue  # named once, after the first copy it shares with
            total = self._listed.get(later, shared)
            if shared >= total:
                copy.shares_storage = (f"is the same storage as {other.label}: every file "
                                       f"({total}) is a hard link to one of its files (same "
                                       "device and inode); it does not count")
            else:
                copy.shares_storage = (f"shares {shared} of its {total} files with "
                                       f"{other.label} as hard links (same device and "
                                       "inode: one stored copy of those bytes); it does "
                                       "not count")

    def accept(self, dataset: Dataset) -> tuple[CopyResult, Reference]:
        """Adopt the primary's current content as the new reference, after an
        intentional change (with producer manifests: for the files no manifest
        names).  Recorded with time and user."""
        primary = dataset.primary
        reference = self.keeper.begin(dataset, accept=True)
        try:
            result = self._audit_copy(dataset, primary, reference, {},
                                      algorithms=self._reference_algorithms(dataset))
        finally:
            self.close()
        return result, reference

    def _same_address(self, dataset: Dataset, copy: CopySpec, first: CopyResult
                      ) -> CopyResult:
        """A copy declared at ``first``'s address: ``first``'s verdict, marked as
        the same storage so that it counts once."""
        location = self.inventory.locations[copy.location]
        return CopyResult(
            location=copy.location, path=copy.path, media=location.media,
            site=location.site, primary=False, offsite=self._offsite(dataset, location),
            state=first.state, verification=first.verification, files=first.files,
            same_as=first.label,
            detail=f"declared at the same address as {first.label}; counted once")

    def _offsite(self, dataset: Dataset, location: Location) -> bool:
        """At another site than the primary's, compared as vocabulary says."""
        return is_offsite(self.inventory.locations, dataset, location)

    # -- the reference ----------------------------------------------------------
    def _reference_algorithms(self, dataset: Dataset) -> list[str]:
        """xxh3_128, plus what the other copies' servers can report themselves."""
        algorithms = [DEFAULT_ALGORITHM]
        for copy in dataset.copies:
            location = self.inventory.locations[copy.location]
            if self.connections.is_unreachable(location.name):
                continue
            try:
                with self.connections.hold(location):
                    extra = self.backend(location).digest_algorithms()
            except BackendError:
                continue
            algorithms += [a for a in extra if a not in algorithms]
        return algorithms

    # -- one copy ---------------------------------------------------------------
    def _audit_copy(self, dataset: Dataset, copy: CopySpec, reference: Reference,
                    identities: dict[str, CopyResult],
                    algorithms: Sequence[str] | None = None) -> CopyResult:
        """One copy, its location held for the whole time (one copy at a time
        per location, whatever else runs at once)."""
        with self.connections.hold(self.inventory.locations[copy.location]):
            return self._audit_held_copy(dataset, copy, reference, identities, algorithms)

    def _audit_held_copy(self, dataset: Dataset, copy: CopySpec, reference: Reference,
                         identities: dict[str, CopyResult],
                         algorithms: Sequence[str] | None) -> CopyResult:
        location = self.inventory.locations[copy.location]
        primary = dataset.primary
        result = CopyResult(location=copy.location, path=copy.path, media=location.media,
                            site=location.site, primary=copy is primary,
                            offsite=self._offsite(dataset, location), state=CopyState.INTACT)
        try:
            backend = self.backend(location)
            root = backend.stat_root(copy.path)
            if root is None:
                raise NotAFolder(f"{copy.path} does not exist on {copy.location}")
            keys = root.keys()
            if keys:
                first = next((identities[k] for k in keys if k in identities), None)
                if first is not None:
                    # The same directory again (symlink, bind mount, same path twice):
                    # its verdict is the first one's, and it must not count twice.
                    result.state = first.state
                    result.verification = first.verification
                    result.files = first.files
                    result.same_as = first.label
                    result.detail = f"same storage as {first.label}; counted once"
                    return result
                for key in keys:
                    identities[key] = result
            ctx = self._context(backend, dataset, copy)
            identity, moved = self._storage(backend, copy, root, ctx.key, result)
            # A reference made from the primary's content, with no progress line
            # to show its totals first: the primary is listed as it is read (the
            # hashing workers start on its first files, not after its last folder).
            single_pass = (reference.made_from is copy and not reference.manifests
                           and self.progress.on_copy is None)
            list_copy(ctx, single_pass)
            listing = ctx.listed
            if not listing.single_pass:
                self._copy_listed(dataset, copy, result, backend, listing)
            reading = time.monotonic()
            if reference.made_from is copy and self.keeper.from_primary(
                    ctx, reference, result, algorithms or [DEFAULT_ALGORITHM], identity):
                if listing.single_pass:
                    self._copy_listed(dataset, copy, result, backend, listing)
                # The primary's content was made the reference (or failed to be).
                if reference.usable and ctx.full_reads is not None:
                    self._full_reads[copy.index] = ctx.full_reads
            elif not reference.usable:
                result.state = CopyState.ERROR
                result.detail = reference.detail
                result.files.present = listing.files
            else:
                plan = self.options.plan
                if moved:
                    plan = replace(plan, mode="full")
                compare(ctx, plan, self.catalog.last_audit_at(ctx.key),
                        reference.source == "manifest", result)
                self.keeper.copy_audited(ctx, reference, result, identity, replace=moved)
                if ctx.full_reads is not None:
                    self._full_reads[copy.index] = ctx.full_reads
            result.read_seconds = time.monotonic() - reading
        except NotAFolder as exc:
            # Nothing there, or a file where the copy's folder should be: the copy
            # is not there.
            result.state = CopyState.MISSING
            result.detail = str(exc)
        except LocationUnreachable as exc:
            result.state = CopyState.UNREACHABLE
            result.detail = str(exc)
            offline.remember(self.catalog, copy_key(dataset.name, copy), location,
                             self.options.clock(), result)
        except CopyFailed as exc:
            result.state = CopyState.ERROR
            result.detail = str(exc)
        else:
            return result
        if reference.made_from is copy:
            self.keeper.primary_unavailable(dataset, reference,
                                            f"the primary copy {result.label} is "
                                            f"{result.state.value} ({result.detail})")
        return result

    def _storage(self, backend: Backend, copy: CopySpec, root: RootInfo, key: str,
                 result: CopyResult) -> tuple[dict[str, str], bool]:
        """The copy's storage identity, and whether it moved since the catalog last
        verified the copy: then nothing cached about it counts, every file is
        verified in full, and the report says why."""
        identity = backend.storage_identity(copy.path, root)
        before = self.catalog.storage_identity(key)
        moved = before is not None and before != identity
        if moved:
            assert before is not None
            result.notes.append(
                f"copy {result.label} is not on the storage it was last verified on "
                f"({describe_identity_change(before, identity)}): nothing cached about it "
                "is trusted; every file was verified in full")
        return identity, moved

    def _context(self, backend: Backend, dataset: Dataset, copy: CopySpec) -> CopyContext:
        limit = self.options.plan.time_limit
        force = self.options.force_download or backend.force_download
        return CopyContext(
            backend=backend, dataset=dataset, copy=copy, key=copy_key(dataset.name, copy),
            workset=self.workset, workers=self.options.workers or backend.default_workers(),
            force_full=force,
            now=self.options.clock(),
            deadline=None if limit is None else self._started + limit,
            clock=self.options.clock, progress=self.progress, cached=self.progress.cached)

    # -- judging ---------------------------------------------------------------
    def _judge(self, dataset: Dataset, policy: Policy, reference: Reference,
               copies: list[CopyResult], warnings: list[str]) -> DatasetResult:
        views = [self._view(c) for c in copies]
        judgement = judge(policy, views, self.options.clock())
        for position, copy in enumerate(copies):
            copy.counted = judgement.counted[position]
            reason = judgement.not_counted.get(position)
            if (reason and copy.state is CopyState.INTACT and not copy.same_as
                    and not copy.shares_storage):
                warnings.append(f"copy {copy.label} not counted: {reason}")
        if reference.source == "none" and reference.detail:
            warnings.insert(0, reference.detail)
        status = judgement.status
        violations = list(judgement.violations)
        if reference.source == "invalid":
            # The producer's reference contradicts itself: no copy can be judged
            # intact against it, whatever the copies hold.
            status = Status.FAIL
            violations.insert(0, Violation("reference", 1, 0, reference.detail))
        if dataset.gone:
            # Audited before, its folder gone now: whatever the other copies hold,
            # the dataset fails until someone says it is gone on purpose (forget).
            status = Status.FAIL
            violations.insert(0, Violation("dataset-gone", 1, 0, dataset.gone))
        plan = self.options.plan
        if (policy.max_age is not None and plan.mode == "scheduled"
                and plan.interval > policy.max_age):
            warnings.append(
                f"--fixity-interval ({plan.interval / 86400:g} days) is longer than policy "
                f"{policy.name}'s max_age {policy.max_age_text}: copies will drop out of "
                "the count before the schedule re-reads them")
        if reference.source != "manifest":
            warnings.extend(_majority_view(copies))
        for copy in copies:
            if copy.same_as:
                continue  # said once, of the copy it is the same storage as
            named = _with_twins(copy, copies)
            if (copy.state in (CopyState.INCOMPLETE, CopyState.MISSING)
                    and status is Status.PASS):
                warnings.append(f"copy {named} is {copy.state.value} (not needed to pass)")
            if copy.files.extra:
                warnings.append(f"copy {named} has {plural(copy.files.extra, 'file')} "
                                "not in the reference")
        return DatasetResult(name=dataset.name, policy=policy.name,
                             status=status,
                             counts=judgement.counts.as_dict(),
                             violations=violations, warnings=warnings,
                             copies=copies,
                             reference="manifest" if reference.source == "invalid"
                             else reference.source,
                             attested=list(policy.attested), reference_files=reference.files)

    def _view(self, copy: CopyResult) -> CopyView:
        location = self.inventory.locations[copy.location]
        return CopyView(label=copy.label, location=copy.location, media=copy.media,
                        site=copy.site, offsite=copy.offsite, state=copy.state,
                        same_as=copy.same_as, shares_storage=copy.shares_storage,
                        attributes=location.settings,
                        verified_at=copy.verified_at)


# -- helpers -----------------------------------------------------------------------

def describe_identity_change(before: Mapping[str, str], after: Mapping[str, str]) -> str:
    """``root: /a -> /b; filesystem: ... -> ...``: what moved (no secrets are
    ever part of a storage identity)."""
    changes = [f"{key}: {before.get(key, '(none)')} -> {after.get(key, '(none)')}"
               for key in dict.fromkeys([*before, *after])
               if before.get(key) != after.get(key)]
    return "; ".join(changes)


def _with_twins(copy: CopyResult, copies: Sequence[CopyResult]) -> str:
    """``copy``'s label, naming the other declarations of the same storage:
    ``u:ds (declared twice)``, ``u:ds (also declared as u:./ds)``."""
    twins = [c.label for c in copies if c.same_as == copy.label and c is not copy]
    again = sum(1 for label in twins if label == copy.label)
    said = [("declared twice" if again == 1 else f"declared {again + 1} times")] if again else []
    others = [label for label in twins if label != copy.label]
    if others:
        said.append("also declared as " + ", ".join(others))
    return f"{copy.label} ({'; '.join(said)})" if said else copy.label


def _majority_view(copies: Sequence[CopyResult]) -> list[str]:
    """When copies disagree with a recorded (not producer-given) reference, say
    which copies agree with each other: if most copies share a content the
    reference does not have, the primary probably changed on purpose (then
    ``threetwoone accept``) or is the one that rotted."""
    notes = []
    paths = sorted({p for c in copies for p in c.mismatches})
    for path in paths[:20]:
        groups: dict[str, list[str]] = {}
        for copy in copies:
            if copy.same_as or copy.state in (CopyState.UNREACHABLE, CopyState.MISSING,
                                              CopyState.OUTDATED):
                continue
            if path in copy.mismatches:
                groups.setdefault(copy.mismatches[path], []).append(copy.label)
            elif not any(p.path == path for p in copy.problems):
                groups.setdefault("reference", []).append(copy.label)
        agreeing = {k: v for k, v in groups.items() if k != "reference" and len(v) > 1}
        matching = groups.get("reference", [])
        for labels in agreeing.values():
            notes.append(f"{display(path)}: copies {', '.join(labels)} agree with each other "
                         f"but not with the reference"
                         + (f" (which {', '.join(matching)} match)" if matching else
                            " (no copy matches the reference)"))
        if not agreeing and len(groups) > 1 and matching:
            others = [label for key, labels in groups.items() if key != "reference"
                      for label in labels]
            verb = "matches" if len(matching) == 1 else "match"
            differ = (f"{others[0]} differs" if len(others) == 1
                      else f"the others ({', '.join(others)}) each differ in their own way")
            notes.append(f"{display(path)}: {', '.join(matching)} {verb} the reference; "
                         f"{differ}")
    return notes


def _summary(dataset: DatasetResult) -> dict[str, object]:
    return {"counts": dataset.counts,
            "violations": [v.message for v in dataset.violations],
            "copies": {c.label: c.state.value for c in dataset.copies}}


__all__ = ["AuditOptions", "Auditor", "Progress", "copy_key"]
