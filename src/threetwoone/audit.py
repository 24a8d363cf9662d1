"""The Auditor: establish each dataset's reference, audit every copy against it,
and judge the dataset against its policy.  It prints nothing; the CLI renders.

The order of work per dataset:

1. the reference: the producer manifest (read from the primary copy), else the
   catalog, else the primary's content hashed now and recorded;
2. each copy: list it, compare names and sizes with the reference, hash what
   must be hashed, and give it one state (README "Verdicts");
3. de-duplicate copies that are the same storage, count, evaluate the policy.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from . import bag as bag_module
from . import manifest, nextsteps, reference
from .backends import (
    Backend,
    BackendError,
    CopyFailed,
    EntryKind,
    LocationUnreachable,
    NotAFolder,
    RootInfo,
    WalkProblem,
    open_backend,
)
from .catalog import Catalog, ReferenceFile, current_user, default_state_path, now_iso
from .checksums import DEFAULT_ALGORITHM
from .copyaudit import CopyContext, compare, list_copy, make_reference
from .copyaudit import check_bag as reference_check_bag
from .errors import ThreeTwoOneError
from .inventory import CopySpec, Dataset, Inventory, Location, declared_twice
from .pathnames import display
from .policy import CopyView, Policy, Violation, judge
from .results import (
    AuditResult,
    CopyResult,
    CopyState,
    DatasetResult,
    ReferenceFiles,
    Status,
)
from .schedule import VerifyPlan
from .vocabulary import spelling_warnings, value_key, warnings_for
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


@dataclass
class Progress:
    """Receives (files, bytes) as hashing proceeds; the CLI draws it."""

    callback: Callable[[int, int], None] | None = None

    def __call__(self, files: int, size: int) -> None:
        if self.callback:
            self.callback(files, size)


def copy_key(dataset: str, copy: CopySpec) -> str:
    return f"{dataset}/{copy.location}/{copy.path.strip('/')}"


@dataclass
class _Reference:
    """The reference as the auditor uses it."""

    source: str  # manifest | primary | accepted | none | invalid
    detail: str = ""
    #: The manifests themselves: not compared (yet) as dataset files.
    skip: frozenset[str] = frozenset()
    #: The bag, when the dataset is a BagIt bag: every copy is checked as one.
    bag: bag_module.Bag | None = None
    #: With producer manifests: how many files they cover and how many were recorded.
    files: ReferenceFiles | None = None
    #: Set when the reference was just made from this copy's content.
    made_from: CopySpec | None = None
    new: bool = False
    #: Files in a reference made this run.
    count: int = 0


class Auditor:
    def __init__(self, inventory: Inventory, policies: Mapping[str, Policy],
                 catalog: Catalog, options: AuditOptions | None = None,
                 progress: Progress | None = None) -> None:
        self.inventory = inventory
        self.policies = policies
        self.catalog = catalog
        self.options = options or AuditOptions()
        self.progress = progress or Progress()
        self._backends: dict[str, Backend] = {}
        self._unreachable: dict[str, str] = {}
        self._started = self.options.clock()
        self.workset = Workset(catalog.db)
        #: Sites, media and zones spelt apart but compared as one, shown with the
        #: datasets that have copies there.
        self._spelling = spelling_warnings(inventory)

    # -- backends ---------------------------------------------------------------
    def backend(self, location: Location) -> Backend:
        """The connected backend for ``location``; connect once per run."""
        if location.name in self._unreachable:
            raise LocationUnreachable(self._unreachable[location.name])
        if location.name not in self._backends:
            backend = open_backend(location)
            try:
                backend.connect()
            except LocationUnreachable as exc:
                self._unreachable[location.name] = str(exc)
                backend.close()
                raise
            self._backends[location.name] = backend
        return self._backends[location.name]

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()

    # -- the run ------------------------------------------------------------------
    def run(self, datasets: Sequence[str] | None = None) -> AuditResult:
        started = now_iso()
        began = time.monotonic()
        names = list(datasets) if datasets else list(self.inventory.datasets)
        run_id = self.catalog.start_run(self.inventory.path)
        results = []
        try:
            for name in names:
                dataset_began = time.monotonic()
                dataset = self.audit_dataset(self.inventory.datasets[name])
                dataset.duration_seconds = time.monotonic() - dataset_began
                results.append(dataset)
        finally:
            self.close()
        result = AuditResult(os.path.abspath(self.inventory.path), started, now_iso(), results,
                             host=socket.gethostname(),
                             duration_seconds=time.monotonic() - began)
        self.catalog.finish_run(run_id, result.status.value, result.exit_code, (
            (d.name, d.policy, d.status.value, _summary(d)) for d in results))
        return result

    def audit_dataset(self, dataset: Dataset) -> DatasetResult:
        policy = self.policies[dataset.name]
        warnings: list[str] = []
        primary = dataset.primary
        warnings.extend(warnings_for(self._spelling, {c.location for c in dataset.copies}))
        #: storage identity -> the first copy found there, to count it once
        identities: dict[str, CopyResult] = {}
        results: dict[int, CopyResult] = {}
        # Copies declared at an earlier copy's address are not audited: they take
        # its verdict and count once, also when their location cannot be reached.
        twice = declared_twice(self.inventory.locations, dataset)
        self.workset.reset_storage()
        reference = self._known_reference(dataset, warnings)
        if reference is None:
            # First audit without a manifest: the primary's content becomes the reference.
            reference = _Reference("primary", made_from=primary, new=True)
            results[primary.index] = self._audit_copy(
                dataset, primary, reference, identities,
                algorithms=self._reference_algorithms(dataset))
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
        judged = self._judge(dataset, policy, reference, copies, warnings)
        if reference.new and reference.count and reference.source == "primary":
            judged.reference = "recorded"  # a new baseline: the CLI says so, even with -q
        nextsteps.annotate(judged, dataset, self.inventory, self._commands())
        return judged

    def _commands(self) -> nextsteps.Commands:
        """How a next step spells threetwoone commands for this inventory and catalog."""
        state = os.path.abspath(self.catalog.path)
        default = os.path.abspath(default_state_path())
        return nextsteps.Commands(os.path.abspath(self.inventory.path),
                                  None if state == default else state)

    def _hard_links(self, copies: Sequence[CopyResult]) -> None:
        """Copies whose files are hard links to another copy's (``cp -al``,
        rsnapshot) hold no bytes of their own for those files.  The rule: a copy
        that shares even one file (same device and inode) with a copy listed
        before it in the inventory does not count; the warning names both and how
        many files they share.  Strict on purpose: each shared file has one
        stored copy, whatever the paths say."""
        seen: set[int] = set()
        for later, earlier, shared in self.workset.shared_storage():
            if later in seen:
                continue  # named once, after the first copy it shares with
            seen.add(later)
            copy, first = copies[later], copies[earlier]
            total = self.workset.noted_files(later)
            if shared >= total:
                copy.shares_storage = (f"is the same storage as {first.label}: every file "
                                       f"({total}) is a hard link to one of its files (same "
                                       "device and inode); it does not count")
            else:
                copy.shares_storage = (f"shares {shared} of its {total} files with "
                                       f"{first.label} as hard links (same device and "
                                       "inode: one stored copy of those bytes); it does "
                                       "not count")

    def accept(self, dataset: Dataset) -> CopyResult:
        """Adopt the primary's current content as the new reference, after an
        intentional change.  Recorded with time and user."""
        if dataset.checksums:
            raise ThreeTwoOneError(
                f"dataset {dataset.name} has producer manifests "
                f"({', '.join(c.label for c in dataset.checksums)}); they are its "
                "reference: update the manifests instead")
        primary = dataset.primary
        reference = _Reference("accepted", made_from=primary, new=True)
        try:
            result = self._audit_copy(dataset, primary, reference, {},
                                      algorithms=self._reference_algorithms(dataset))
        finally:
            self.close()
        return result

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
        primary_site = self.inventory.locations[dataset.primary.location].site
        return value_key(location.site) != value_key(primary_site)

    # -- the reference ----------------------------------------------------------
    def _known_reference(self, dataset: Dataset, warnings: list[str]) -> _Reference | None:
        """The manifests' or the catalog's reference; None on a first audit."""
        info = self.catalog.reference_info(dataset.name)
        if dataset.checksums:
            return self._manifest_reference(dataset, warnings)
        if info:
            return _Reference(info[0])
        return None

    def _manifest_reference(self, dataset: Dataset, warnings: list[str]) -> _Reference:
        """Read every producer manifest of the primary into the catalog's reference."""
        stored = self.catalog.reference(dataset.name)
        primary = dataset.primary
        location = self.inventory.locations[primary.location]
        try:
            backend = self.backend(location)
        except BackendError as exc:
            read = reference.ManifestRead(problems=[f"the primary copy's location "
                                                    f"{primary.location} is unreachable: {exc}"])
        else:
            read = reference.read_manifests(dataset.checksums,
                                            _lister(backend, primary.path),
                                            _reader(backend, primary.path))
        warnings.extend(read.notes)
        if read.invalid:
            return _Reference("invalid", detail="; ".join(read.invalid))
        if read.problems:
            detail = "; ".join(read.problems)
            if stored and stored.source == "manifest":
                warnings.append(f"{detail}; using the producer manifests' reference kept in "
                                "the catalog")
                return _Reference("manifest", skip=read.unlisted_manifests)
            return _Reference("none", detail=detail)
        files = {}
        for path, digests in read.expected.files.items():
            known = stored.files.get(path) if stored else None
            size = None
            merged = dict(digests)
            if known and all(known.digests.get(a) == d for a, d in digests.items()):
                merged = {**known.digests, **digests}  # keep e.g. xxh3_128 learnt before
                size = known.size
            files[path] = ReferenceFile(path, size, merged)
        if (stored is None or stored.source != "manifest"
                or _manifest_digests(stored.files) != _manifest_digests(files, read)):
            # A new or re-issued manifest: record it (this also forgets what copies
            # verified against the old one).
            self.catalog.save_reference(dataset.name, "manifest", files.values())
        return _Reference("manifest", skip=read.unlisted_manifests, bag=read.bag,
                          files=ReferenceFiles(len(read.expected.manifests),
                                               len(read.expected.files), 0))

    def _reference_algorithms(self, dataset: Dataset) -> list[str]:
        """xxh3_128, plus what the other copies' servers can report themselves."""
        algorithms = [DEFAULT_ALGORITHM]
        for copy in dataset.copies:
            location = self.inventory.locations[copy.location]
            if location.name in self._unreachable:
                continue
            try:
                extra = self.backend(location).digest_algorithms()
            except BackendError:
                continue
            algorithms += [a for a in extra if a not in algorithms]
        return algorithms

    # -- one copy ---------------------------------------------------------------
    def _audit_copy(self, dataset: Dataset, copy: CopySpec, reference: _Reference,
                    identities: dict[str, CopyResult],
                    algorithms: Sequence[str] | None = None) -> CopyResult:
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
            list_copy(ctx, reference.skip)
            if backend.ident_is_storage:
                self.workset.note_storage(copy.index)
            if reference.made_from is copy:
                self._make_reference(ctx, algorithms or [DEFAULT_ALGORITHM], reference,
                                     result, identity)
            elif reference.source in ("none", "invalid"):
                result.state = CopyState.ERROR
                result.detail = reference.detail
                result.files.present = ctx.workset.listed_files()[0]
            else:
                plan = self.options.plan
                if moved:
                    plan = replace(plan, mode="full")
                compare(ctx, plan, self.catalog.last_audit_at(ctx.key),
                        reference.source == "manifest", result)
                if reference.bag is not None:
                    reference_check_bag(reference.bag, ctx, result)
                ctx.workset.commit_copy(ctx.key, dataset.name, result.state.value, ctx.now,
                                        identity, replace=moved)
        except NotAFolder as exc:
            # Nothing there, or a file where the copy's folder should be: the copy
            # is not there.
            result.state = CopyState.MISSING
            result.detail = str(exc)
            if reference.made_from is copy:
                reference.source = "none"
                reference.detail = (f"no reference yet: the primary copy {result.label} "
                                    f"is missing ({exc})")
            return result
        except LocationUnreachable as exc:
            result.state = CopyState.UNREACHABLE
            result.detail = str(exc)
        except CopyFailed as exc:
            result.state = CopyState.ERROR
            result.detail = str(exc)
        if reference.made_from is copy and result.state is not CopyState.INTACT:
            reference.source = "none"
            reference.detail = (f"no reference yet: the primary copy {result.label} is "
                                f"{result.state.value} ({result.detail or 'see problems'})")
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
        force = self.options.force_download or bool(
            backend.location.attribute("force_download", False))
        return CopyContext(
            backend=backend, dataset=dataset, copy=copy, key=copy_key(dataset.name, copy),
            workset=self.workset, workers=self.options.workers or backend.default_workers(),
            force_full=force,
            now=self.options.clock(),
            deadline=None if limit is None else self._started + limit,
            clock=self.options.clock, progress=self.progress)

    def _make_reference(self, ctx: CopyContext, algorithms: Sequence[str],
                        reference: _Reference, result: CopyResult,
                        identity: Mapping[str, str]) -> None:
        """First audit (or accept): the primary's content becomes the reference."""
        if not make_reference(ctx, algorithms, result):
            return
        self.workset.commit_reference(ctx.dataset.name, reference.source, now_iso(),
                                      self.options.user or current_user(), ctx.key,
                                      result.state.value, ctx.now, identity)
        reference.count = result.verified_files

    # -- judging ---------------------------------------------------------------
    def _judge(self, dataset: Dataset, policy: Policy, reference: _Reference,
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
            status = "fail"
            violations.insert(0, Violation("reference", 1, 0, reference.detail))
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
            if (copy.state in (CopyState.INCOMPLETE, CopyState.MISSING)
                    and status == "pass"):
                warnings.append(f"copy {copy.label} is {copy.state.value} (not needed to pass)")
            if copy.files.extra:
                warnings.append(f"copy {copy.label} has {plural(copy.files.extra, 'file')} "
                                "not in the reference")
        return DatasetResult(name=dataset.name, policy=policy.name,
                             status=Status(status),
                             counts=judgement.counts.as_dict(),
                             violations=violations, warnings=warnings,
                             copies=copies,
                             reference="manifest" if reference.source == "invalid"
                             else reference.source,
                             attested=list(policy.attested), reference_files=reference.files)

    def _view(self, copy: CopyResult) -> CopyView:
        location = self.inventory.locations[copy.location]
        return CopyView(label=copy.label, location=copy.location, media=copy.media,
                        site=copy.site, offsite=copy.offsite, state=copy.state.value,
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


def _manifest_digests(files: Mapping[str, ReferenceFile],
                      read: reference.ManifestRead | None = None) -> dict[str, dict[str, str]]:
    """What the manifests say per file: the digests a reference must keep."""
    if read is not None:
        return {path: dict(digests) for path, digests in read.expected.files.items()}
    return {path: {a: d for a, d in f.digests.items() if a in manifest.HEX_LENGTHS}
            for path, f in files.items()}


def _reader(backend: Backend, root: str) -> reference.Reader:
    def read(path: str) -> bytes:
        try:
            with backend.open_read(root, path) as handle:
                return handle.read()
        except (BackendError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise reference.ReadFailed(reason) from exc
    return read


def _lister(backend: Backend, root: str) -> reference.Lister:
    def listing() -> list[tuple[str, int]]:
        out = []
        try:
            for item in backend.walk(root):
                if isinstance(item, WalkProblem):
                    raise reference.ReadFailed(f"{item.path or '.'}: {item.detail}")
                if item.kind is EntryKind.FILE:
                    out.append((item.path, item.size))
        except BackendError as exc:
            raise reference.ReadFailed(str(exc)) from exc
        return out
    return listing


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
            if copy.same_as or copy.state in (CopyState.UNREACHABLE, CopyState.MISSING):
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
