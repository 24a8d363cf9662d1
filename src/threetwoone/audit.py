"""The Auditor: establish each dataset's reference, audit every copy against it,
and judge the dataset against its policy.  It prints nothing; the CLI renders.

The order of work per dataset:

1. the reference: the producer manifest (read from the primary copy), else the
   catalog, else the primary's content hashed now and recorded;
2. each copy: list it, compare names and sizes with the reference, hash what
   must be hashed, and give it one state (DESIGN.md "Verdicts");
3. de-duplicate copies that are the same storage, count, evaluate the policy.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from . import manifest
from .backends import (
    Backend,
    BackendError,
    CopyFailed,
    Entry,
    EntryKind,
    HashResult,
    LocationUnreachable,
    WalkProblem,
    open_backend,
)
from .catalog import Catalog, ReferenceFile, SeenFile, now_iso
from .checksums import DEFAULT_ALGORITHM
from .errors import ThreeTwoOneError
from .inventory import CopySpec, Dataset, Inventory, Location
from .pathnames import display
from .policy import CopyView, Policy, judge
from .results import (
    AuditResult,
    CopyResult,
    CopyState,
    DatasetResult,
    Problem,
    ProblemKind,
    Status,
    Verification,
)
from .schedule import Selection, VerifyPlan, select, unchanged


@dataclass
class AuditOptions:
    workers: int = 1
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

    source: str  # manifest | primary | accepted | none
    files: dict[str, ReferenceFile]
    detail: str = ""
    #: Set when the reference was just made from this copy's content.
    made_from: CopySpec | None = None
    new: bool = False

    def algorithms(self) -> set[str]:
        algos: set[str] | None = None
        for f in self.files.values():
            algos = set(f.digests) if algos is None else algos & set(f.digests)
        return algos or set()


@dataclass
class _Listing:
    files: dict[str, Entry] = field(default_factory=dict)
    others: dict[str, Entry] = field(default_factory=dict)  # symlinks and special files
    problems: list[WalkProblem] = field(default_factory=list)


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
        names = list(datasets) if datasets else list(self.inventory.datasets)
        run_id = self.catalog.start_run(self.inventory.path)
        results = []
        try:
            for name in names:
                results.append(self.audit_dataset(self.inventory.datasets[name]))
        finally:
            self.close()
        result = AuditResult(self.inventory.path, started, now_iso(), results)
        self.catalog.finish_run(run_id, result.status.value, result.exit_code, (
            (d.name, d.policy, d.status.value, _summary(d)) for d in results))
        return result

    def audit_dataset(self, dataset: Dataset) -> DatasetResult:
        policy = self.policies[dataset.name]
        warnings: list[str] = []
        primary = dataset.primary
        #: storage identity -> the first copy found there, to count it once
        identities: dict[str, CopyResult] = {}
        results: dict[int, CopyResult] = {}
        reference = self._known_reference(dataset, warnings)
        if reference is None:
            # First audit without a manifest: the primary's content becomes the reference.
            reference = _Reference("primary", {}, made_from=primary, new=True)
            results[primary.index] = self._audit_copy(
                dataset, primary, reference, identities,
                algorithms=self._reference_algorithms(dataset))
        for copy in dataset.copies:
            if copy.index not in results:
                results[copy.index] = self._audit_copy(dataset, copy, reference, identities)
        copies = [results[c.index] for c in dataset.copies]
        for copy_result in copies:
            if copy_result.same_as:
                warnings.append(f"copy {copy_result.label} is the same storage as "
                                f"{copy_result.same_as}; it counts once")
        if reference.new and reference.files:
            warnings.append(f"reference recorded from the primary copy "
                            f"{results[primary.index].label} ({len(reference.files)} files); "
                            "later audits compare every copy with it")
        return self._judge(dataset, policy, reference, copies, warnings)

    def accept(self, dataset: Dataset) -> CopyResult:
        """Adopt the primary's current content as the new reference, after an
        intentional change.  Recorded with time and user."""
        if dataset.checksums:
            raise ThreeTwoOneError(
                f"dataset {dataset.name} has a producer manifest "
                f"({dataset.checksums.file}); the manifest is its reference: update the "
                "manifest instead")
        primary = dataset.primary
        reference = _Reference("accepted", {}, made_from=primary, new=True)
        try:
            result = self._audit_copy(dataset, primary, reference, {},
                                      algorithms=self._reference_algorithms(dataset))
        finally:
            self.close()
        return result

    # -- the reference ----------------------------------------------------------
    def _known_reference(self, dataset: Dataset, warnings: list[str]) -> _Reference | None:
        """The manifest or the catalog's reference; None on a first audit."""
        stored = self.catalog.reference(dataset.name)
        if dataset.checksums:
            spec = dataset.checksums
            primary = dataset.primary
            location = self.inventory.locations[primary.location]
            try:
                backend = self.backend(location)
                with backend.open_read(primary.path, spec.file) as handle:
                    data = handle.read()
            except (BackendError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                if stored and stored.source == "manifest":
                    warnings.append(f"producer manifest {spec.file} could not be read "
                                    f"({reason}); using the copy of it in the catalog")
                    return _Reference("manifest", stored.files)
                return _Reference("none", {}, detail=f"producer manifest {spec.file} in "
                                  f"{primary.location}:{primary.path} could not be read: "
                                  f"{reason}")
            try:
                entries = manifest.parse(data, spec.algorithm)
            except manifest.ManifestError as exc:
                return _Reference("none", {}, detail=f"producer manifest {spec.file}: {exc}")
            if not entries:
                return _Reference("none", {}, detail=f"producer manifest {spec.file} lists "
                                                     "no files")
            files = {}
            for entry in entries:
                known = stored.files.get(entry.path) if stored else None
                digests = {spec.algorithm: entry.digest}
                size = None
                if known and known.digests.get(spec.algorithm) == entry.digest:
                    digests = {**known.digests, **digests}  # keep e.g. xxh3_128 learnt before
                    size = known.size
                files[entry.path] = ReferenceFile(entry.path, size, digests)
            if (stored is None or stored.source != "manifest"
                    or _manifest_digests(stored.files, spec.algorithm)
                    != _manifest_digests(files, spec.algorithm)):
                # A new or re-issued manifest: record it (this also forgets what copies
                # verified against the old one).
                self.catalog.save_reference(dataset.name, "manifest", files.values())
            return _Reference("manifest", files)
        if stored:
            return _Reference(stored.source, stored.files)
        return None

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
        primary_site = self.inventory.locations[primary.location].site
        result = CopyResult(location=copy.location, path=copy.path, media=location.media,
                            site=location.site, primary=copy is primary,
                            offsite=location.site != primary_site, state=CopyState.INTACT)
        try:
            backend = self.backend(location)
            root = backend.stat_root(copy.path)
            if root is None:
                result.state = CopyState.MISSING
                result.detail = f"{copy.path} does not exist on {copy.location}"
                if reference.made_from is copy:
                    reference.source = "none"
                    reference.detail = (f"no reference yet: the primary copy {result.label} "
                                        "does not exist")
                return result
            if root.identity is not None:
                first = identities.get(root.identity)
                if first is not None:
                    # The same directory again (symlink, bind mount, same path twice):
                    # its verdict is the first one's, and it must not count twice.
                    result.state = first.state
                    result.verification = first.verification
                    result.files = first.files
                    result.same_as = first.label
                    result.detail = f"same storage as {first.label}; counted once"
                    return result
                identities[root.identity] = result
            listing = self._list(backend, dataset, copy)
            if reference.made_from is copy:
                self._make_reference(backend, dataset, copy, listing,
                                     algorithms or [DEFAULT_ALGORITHM], reference, result)
            elif reference.source == "none":
                result.state = CopyState.ERROR
                result.detail = reference.detail
                result.files.present = len(listing.files)
            else:
                self._compare(backend, dataset, copy, listing, reference, result)
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

    def _list(self, backend: Backend, dataset: Dataset, copy: CopySpec) -> _Listing:
        listing = _Listing()
        skip = {dataset.checksums.file} if dataset.checksums else set()
        for item in backend.walk(copy.path):
            if isinstance(item, WalkProblem):
                listing.problems.append(item)
                continue
            if item.path in skip or _excluded(item.path, dataset.exclude):
                continue
            if item.kind is EntryKind.FILE:
                listing.files[item.path] = item
            else:
                listing.others[item.path] = item
        return listing

    def _make_reference(self, backend: Backend, dataset: Dataset, copy: CopySpec,
                        listing: _Listing, algorithms: Sequence[str],
                        reference: _Reference, result: CopyResult) -> None:
        """Hash the whole primary and record it as the reference (first audit)."""
        _report_walk_problems(listing, result)
        _report_others(listing, {}, result, extra_warning=True)
        files = list(listing.files.values())
        result.files.present = result.files.expected = len(files)
        if not files and not listing.problems:
            result.state = CopyState.ERROR
            result.detail = ("the primary copy has no files on its first audit; refusing to "
                             "record an empty reference (is the disk mounted?)")
            return
        made: dict[str, ReferenceFile] = {}
        seen: list[tuple[str, SeenFile]] = []
        now = self.options.clock()
        for hashed in backend.hash_files(copy.path, files, algorithms,
                                         workers=self.options.workers, force_full=True,
                                         progress=self.progress):
            entry = listing.files[hashed.path]
            result.methods = _add_method(result.methods, hashed)
            if hashed.error:
                result.problems.append(Problem(hashed.path, ProblemKind.UNREADABLE,
                                               hashed.error))
                continue
            made[hashed.path] = ReferenceFile(hashed.path, hashed.size, dict(hashed.digests))
            result.bytes += hashed.size
            seen.append((hashed.path, SeenFile(entry.size, entry.mtime_ns, entry.ident,
                                               now, "ok")))
        result.verified_files = len(made)
        result.verification = Verification.FULL
        result.verified_at = now
        if result.problems or listing.problems:
            result.state = CopyState.ERROR
            result.detail = ("not every file of the primary could be read; no reference "
                             "recorded")
            return
        reference.files = made
        self.catalog.save_reference(dataset.name, reference.source, made.values(),
                                    user=self.options.user)
        self.catalog.record_files(copy_key(dataset.name, copy), dataset.name, seen,
                                  result.state.value, now, replace=True)

    def _compare(self, backend: Backend, dataset: Dataset, copy: CopySpec,
                 listing: _Listing, reference: _Reference, result: CopyResult) -> None:
        ref_files = reference.files
        files = result.files
        files.expected = len(ref_files)
        _report_walk_problems(listing, result)
        unlisted_dirs = [p.path for p in listing.problems]
        key = copy_key(dataset.name, copy)
        seen_before = self.catalog.seen_files(key)
        now = self.options.clock()
        candidates: list[tuple[Entry, SeenFile | None]] = []
        updates: list[tuple[str, SeenFile]] = []
        #: Already corrupt by size; hashed only to tell which copies agree (majority view).
        wrong_size: dict[str, Entry] = {}
        for path, ref in ref_files.items():
            entry = listing.files.get(path)
            if entry is None:
                if any(_is_below(path, d) for d in unlisted_dirs):
                    continue  # already reported as an unreadable folder
                other = listing.others.get(path)
                detail = ""
                if other is not None:
                    detail = ("is a symlink (not followed)" if other.kind is EntryKind.SYMLINK
                              else "is a FIFO, socket or device (not opened)")
                result.problems.append(Problem(path, ProblemKind.MISSING, detail))
                files.missing += 1
                continue
            files.present += 1
            if ref.size is not None and entry.size != ref.size:
                result.problems.append(Problem(
                    path, ProblemKind.CORRUPT,
                    f"size {entry.size} bytes, reference {ref.size} bytes"))
                files.corrupt += 1
                updates.append((path, SeenFile(entry.size, entry.mtime_ns, entry.ident, now,
                                               "corrupt")))
                wrong_size[path] = entry
                continue
            candidates.append((entry, seen_before.get(path)))
        _report_others(listing, ref_files, result, extra_warning=False)
        for path in listing.files:
            if path not in ref_files:
                files.extra += 1
                result.problems.append(Problem(path, ProblemKind.EXTRA,
                                               "not in the reference"))
        selection = select(candidates, self.options.plan, now,
                           self.catalog.last_audit_at(key))
        if reference.source != "manifest":
            selection.must.extend(wrong_size.values())
        oldest = now  # the oldest verification among the files, for max_age rules
        learnt: list[ReferenceFile] = []
        attempted: set[str] = set()
        for hashed in self._hash_selected(backend, copy, reference, selection):
            attempted.add(hashed.path)
            entry = listing.files[hashed.path]
            ref = ref_files[hashed.path]
            if hashed.path in wrong_size:
                if hashed.digests:
                    result.mismatches[hashed.path] = _digest_key(hashed, ref)
                continue
            result.methods = _add_method(result.methods, hashed)
            if hashed.error:
                result.problems.append(Problem(hashed.path, ProblemKind.UNREADABLE,
                                               hashed.error))
                continue
            result.verified_files += 1
            verdict = _compare_digests(hashed, ref)
            outcome = "ok"
            if verdict is not None:
                outcome = "corrupt"
                files.corrupt += 1
                before = seen_before.get(hashed.path)
                if before is not None and unchanged(entry, before):
                    verdict += (" - content changed without a modification: size and mtime "
                                "are as when it last verified ok (silent corruption, bit rot)")
                result.problems.append(Problem(hashed.path, ProblemKind.CORRUPT, verdict))
                result.mismatches[hashed.path] = _digest_key(hashed, ref)
            else:
                result.bytes += entry.size
                if ref.size is None or set(hashed.digests) - set(ref.digests):
                    learnt.append(ReferenceFile(hashed.path, entry.size,
                                                dict(hashed.digests)))
            updates.append((hashed.path, SeenFile(entry.size, entry.mtime_ns, entry.ident,
                                                  now, outcome)))
        for entry, before in selection.cached:
            result.cached_files += 1
            result.bytes += entry.size
            oldest = min(oldest, before.verified_at or 0.0)
        for entry in selection.scheduled:
            # Scheduled but cut by --time-limit: still trusted from the catalog.
            before = seen_before.get(entry.path)
            if entry.path not in attempted and before is not None:
                result.cached_files += 1
                result.bytes += entry.size
                oldest = min(oldest, before.verified_at or 0.0)
        if learnt:
            # Content that matched the reference teaches it sizes and extra digests
            # (e.g. xxh3_128 next to a producer's md5), so later audits are cheaper.
            self.catalog.add_reference_digests(dataset.name, learnt)
        unreadable = sum(1 for p in result.problems if p.problem is ProblemKind.UNREADABLE)
        if files.corrupt:
            result.state = CopyState.CORRUPT
        elif unreadable or listing.problems:
            result.state = CopyState.ERROR
            result.detail = "not every file could be read"
        elif files.missing:
            result.state = CopyState.INCOMPLETE
        else:
            result.state = CopyState.INTACT
        result.verified_at = oldest
        if result.cached_files:
            result.verification = Verification.CACHED
        elif result.verified_files:
            digest_only = all(m.startswith("digest") for m in result.methods)
            result.verification = Verification.DIGEST if digest_only else Verification.FULL
        removed = [p for p in seen_before if p not in listing.files]
        self.catalog.record_files(key, dataset.name, updates, result.state.value, now,
                                  removed=removed)

    def _hash_selected(self, backend: Backend, copy: CopySpec, reference: _Reference,
                       selection: Selection) -> Iterator[HashResult]:
        """Hash what must be read, then the scheduled re-reads in slices until
        --time-limit runs out."""
        force = self.options.force_download or bool(
            backend.location.attribute("force_download", False))

        def run(entries: Sequence[Entry]) -> Iterator[HashResult]:
            if not entries:
                return iter(())
            return backend.hash_files(copy.path, entries,
                                      self._algorithms_for(backend, reference, entries),
                                      workers=self.options.workers, force_full=force,
                                      progress=self.progress)

        yield from run(selection.must)
        limit = self.options.plan.time_limit
        deadline = None if limit is None else self._started + limit
        scheduled = selection.scheduled
        step = 256
        for start in range(0, len(scheduled), step):
            if deadline is not None and self.options.clock() >= deadline:
                break
            yield from run(scheduled[start:start + step])

    def _algorithms_for(self, backend: Backend, reference: _Reference,
                        entries: Sequence[Entry]) -> list[str]:
        """What to ask the backend for: algorithms every file to check has in the
        reference, server-side ones first, then our default."""
        common: set[str] | None = None
        for entry in entries:
            have = set(reference.files[entry.path].digests)
            common = have if common is None else common & have
        if not common:
            common = reference.algorithms() or {DEFAULT_ALGORITHM}
        order = [*backend.digest_algorithms(), DEFAULT_ALGORITHM, "sha256", "md5", "sha1",
                 "sha512", "adler32", "crc32"]
        ordered = [a for a in dict.fromkeys(order) if a in common]
        return ordered or sorted(common)

    # -- judging ---------------------------------------------------------------
    def _judge(self, dataset: Dataset, policy: Policy, reference: _Reference,
               copies: list[CopyResult], warnings: list[str]) -> DatasetResult:
        views = [self._view(c) for c in copies]
        judgement = judge(policy, views, self.options.clock())
        for copy in copies:
            copy.counted = judgement.counted[copy.label]
            reason = judgement.not_counted.get(copy.label)
            if reason and copy.state is CopyState.INTACT and not copy.same_as:
                warnings.append(f"copy {copy.label} not counted: {reason}")
        if reference.source == "none" and reference.detail:
            warnings.insert(0, reference.detail)
        if reference.source != "manifest":
            warnings.extend(_majority_view(copies))
        for copy in copies:
            if (copy.state in (CopyState.INCOMPLETE, CopyState.MISSING)
                    and judgement.status == "pass"):
                warnings.append(f"copy {copy.label} is {copy.state.value} (not needed to pass)")
            if copy.files.extra:
                warnings.append(f"copy {copy.label} has {copy.files.extra} file(s) not in "
                                "the reference")
        return DatasetResult(name=dataset.name, policy=policy.name,
                             status=Status(judgement.status),
                             counts=judgement.counts.as_dict(),
                             violations=judgement.violations, warnings=warnings,
                             copies=copies, reference=reference.source,
                             attested=list(policy.attested))

    def _view(self, copy: CopyResult) -> CopyView:
        location = self.inventory.locations[copy.location]
        return CopyView(label=copy.label, location=copy.location, media=copy.media,
                        site=copy.site, offsite=copy.offsite, state=copy.state.value,
                        same_as=copy.same_as, attributes=location.settings,
                        verified_at=copy.verified_at)


# -- helpers -----------------------------------------------------------------------

def _excluded(path: str, patterns: Iterable[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _is_below(path: str, folder: str) -> bool:
    return folder == "" or path.startswith(folder + "/")


def _add_method(methods: list[str], hashed: HashResult) -> list[str]:
    label = hashed.via or ("digest" if hashed.method == "digest" else "read")
    if hashed.method == "digest" and not label.startswith("digest"):
        label = f"digest: {label}"
    if label not in methods:
        methods.append(label)
    return methods


def _digest_key(hashed: HashResult, ref: ReferenceFile) -> str:
    """"algorithm:digest" on an algorithm the reference has, to group copies."""
    common = [a for a in hashed.digests if a in ref.digests] or sorted(hashed.digests)
    return f"{common[0]}:{hashed.digests[common[0]]}"


def _manifest_digests(files: Mapping[str, ReferenceFile], algorithm: str
                      ) -> dict[str, str | None]:
    return {path: f.digests.get(algorithm) for path, f in files.items()}


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
            notes.append(f"{display(path)}: {', '.join(matching)} match the reference; "
                         "every other copy differs in its own way")
    return notes


def _compare_digests(hashed: HashResult, ref: ReferenceFile) -> str | None:
    """None when the content matches; else the detail of the mismatch."""
    common = [a for a in hashed.digests if a in ref.digests]
    if not common:
        return (f"no comparable checksum (got {', '.join(hashed.digests) or 'none'}, "
                f"reference has {', '.join(ref.digests)})")
    for algorithm in common:
        if hashed.digests[algorithm].lower() != ref.digests[algorithm].lower():
            how = " (server-side digest)" if hashed.method == "digest" else ""
            return (f"{algorithm} {hashed.digests[algorithm]}{how}, "
                    f"reference {ref.digests[algorithm]}")
    return None


def _report_walk_problems(listing: _Listing, result: CopyResult) -> None:
    for problem in listing.problems:
        result.problems.append(Problem(problem.path or ".", ProblemKind.UNREADABLE,
                                       f"folder could not be listed: {problem.detail}"))


def _report_others(listing: _Listing, ref_files: Mapping[str, ReferenceFile],
                   result: CopyResult, extra_warning: bool) -> None:
    """Symlinks and special files that the reference does not expect are extras."""
    for path, entry in listing.others.items():
        if path in ref_files:
            continue  # reported as missing with the reason
        what = "symlink, not followed" if entry.kind is EntryKind.SYMLINK else \
            "FIFO, socket or device, not opened"
        result.files.extra += 1
        result.problems.append(Problem(path, ProblemKind.EXTRA, what))
    del extra_warning


def _summary(dataset: DatasetResult) -> dict[str, object]:
    return {"counts": dataset.counts,
            "violations": [v.message for v in dataset.violations],
            "copies": {c.label: c.state.value for c in dataset.copies}}


__all__ = ["AuditOptions", "Auditor", "Progress", "copy_key", "display"]
