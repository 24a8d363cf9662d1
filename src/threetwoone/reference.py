"""A dataset's reference: what each of its files should contain.  This module
owns it, and is the only writer of reference rows in the catalog.

Where it comes from:

* producer manifests (``checksums:``), read from the primary copy every audit,
  merged with *recorded* entries for the primary's files no manifest names (the
  manifests themselves included): those are hashed from the primary when the
  reference is first established, or by ``accept``, and then checked on every
  copy like the rest (no file goes unverified);
* without manifests: the catalog's reference, recorded from the primary's
  content on the first audit (or by ``accept``).

Every change makes a new reference version (``catalog.replace_reference``);
entries whose content stays the same keep theirs, so what copies verified of them
stays valid.  The Auditor asks ``ReferenceKeeper.begin`` for a dataset's
reference, lets ``from_primary`` establish it once the primary is listed,
compares every copy with what is in the catalog, and hands each copy's result
back (``copy_audited``): the keeper checks it against the bag, if the dataset is
one, and writes what the copy taught the reference.

Reading manifests: the inventory's ``checksums:`` entries name manifests in the
primary copy (a file, every file a glob matches, sidecars, or the copy as a BagIt
bag).  They are found in the primary's listing, read through the backend, every
name turned into a path inside the copy, and all merged into one set of expected
digests, or it is said why that cannot be done:

* ``problems``: the manifests could not be read or parsed, or a glob matched
  nothing: there is no reference (each copy ``error``, the dataset ``unknown``);
* ``invalid``: the manifests contradict themselves (two digests for one file),
  name a file outside the copy, or the primary is not a valid bag: the dataset
  fails (violation ``reference``), whatever the copies hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

from .backends import Backend, BackendError
from .catalog import Catalog, current_user, now_iso
from .checksums import hash_bytes
from .copyaudit import CHUNK, CopyContext, check_bag, digests_json, make_reference, take
from .inventory import ChecksumsSpec, CopySpec, Dataset
from .pathnames import display
from .results import CopyResult, Problem, ProblemKind, ReferenceFiles
from .words import plural

if TYPE_CHECKING:
    # Parsers for datasets with producer manifests, imported when one is read.
    from . import bag as bagit
    from .manifest import ManifestSet

#: Reads a file of the primary copy (a path relative to its root).  Raises
#: ReadFailed, saying why, when it cannot.
Reader = Callable[[str], bytes]
#: The primary's regular files: (path, size), anew at each call.  Raises
#: ReadFailed when the listing cannot be had.
Lister = Callable[[], Iterable[tuple[str, int]]]

#: At most this many problems of one kind are spelled out.
_SHOWN = 5


def _manifest_set() -> ManifestSet:
    from .manifest import ManifestSet

    return ManifestSet()


@dataclass(frozen=True)
class Invalid:
    """Why the producer's reference cannot be used: ``kind`` for the next step
    (``bag``: the primary is no valid bag; ``conflict``: two checksums for one
    file; ``outside``: names outside the copy), ``text`` to say it."""

    kind: str
    text: str


@dataclass
class ManifestRead:
    expected: ManifestSet = field(default_factory=_manifest_set)
    problems: list[str] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The bag, when ``format: bagit``: each copy is checked as one.
    bag: bagit.Bag | None = None


class ReadFailed(Exception):
    """A manifest could not be read from storage (the message says why)."""


def read_manifests(specs: Sequence[ChecksumsSpec], lister: Lister,
                   reader: Reader) -> ManifestRead:
    """Read every manifest ``specs`` name in the primary copy into one set."""
    out = ManifestRead()
    for spec in specs:
        if spec.format == "bagit":
            try:
                _read_bag(lister, reader, out)
            except ReadFailed as exc:
                out.problems.append(f"the primary copy could not be listed: {exc}")
            continue
        if spec.file:
            paths = [spec.file]
        else:
            assert spec.glob is not None
            from . import pathglob

            matcher = pathglob.compile_glob(spec.glob)
            try:
                paths = sorted(p for p, _size in lister() if matcher.match(p))
            except ReadFailed as exc:
                out.problems.append(f"the primary copy could not be listed to find its "
                                    f"manifests: {exc}")
                continue
            if not paths:
                out.problems.append(f"checksums glob {spec.glob!r} matches no file in the "
                                    "primary copy: no reference to compare the copies with")
                continue
        for path in paths:
            _read_one(spec, path, reader, out)
    if out.expected.conflicts:
        conflicts = out.expected.conflicts
        shown = "; ".join(display(str(c)) for c in conflicts[:_SHOWN])
        more = f" (and {len(conflicts) - _SHOWN} more)" if len(conflicts) > _SHOWN else ""
        out.invalid.append(Invalid("conflict", f"the producer manifests give "
                                   f"{plural(len(conflicts), 'file')} two different "
                                   f"checksums: {shown}{more}"))
    if out.expected.self_entries:
        entries = plural(out.expected.self_entries, "manifest entry", "manifest entries")
        out.notes.append(f"{entries} naming its own manifest ignored (a checksum file "
                         "cannot hold its own checksum)")
    if not out.problems and not out.invalid and not out.expected.files:
        out.problems.append("the producer manifests list no files")
    return out


def _read_one(spec: ChecksumsSpec, path: str, reader: Reader, out: ManifestRead) -> None:
    from . import manifest
    from .manifest import ManifestError, PathOutside

    try:
        data = reader(path)
    except ReadFailed as exc:
        out.problems.append(f"producer manifest {display(path)} could not be read: {exc}")
        return
    out.expected.manifests.append(path)
    try:
        if spec.format == "sidecar":
            entries = [manifest.parse_sidecar(data, path, spec.algorithm)]
        else:
            entries = manifest.parse(data, spec.algorithm)
    except ManifestError as exc:
        out.problems.append(f"producer manifest {display(path)}: {exc}")
        return
    base = {"manifest": path.rpartition("/")[0], "dataset": ""}.get(spec.paths, spec.paths)
    outside = []
    for entry in entries:
        try:
            target = (entry.path if spec.format == "sidecar"
                      else manifest.resolve(entry.path, base, spec.strip))
        except PathOutside as exc:
            outside.append(f"line {entry.line}: {exc}")
            continue
        out.expected.add(path, target, entry.algorithm, entry.digest, entry.line)
    if outside:
        more = f" (and {len(outside) - _SHOWN} more)" if len(outside) > _SHOWN else ""
        out.invalid.append(Invalid("outside", f"producer manifest {display(path)} names files "
                                   f"outside the copy: {display('; '.join(outside[:_SHOWN]))}"
                                   f"{more}"))


def _read_bag(lister: Lister, reader: Reader, out: ManifestRead) -> None:
    from . import bag as bagit

    top = [p for p, _size in lister() if "/" not in p]
    unreadable: list[str] = []

    def read(name: str) -> bytes | None:
        if name not in top:
            return None
        try:
            return reader(name)
        except ReadFailed as exc:
            unreadable.append(f"{name} could not be read: {exc}")
            return None

    try:
        bag = bagit.read_bag(top, read)
    except bagit.BagInvalid as exc:
        if unreadable:
            out.problems.extend(unreadable)
        else:
            out.invalid.append(Invalid("bag", "the primary copy is not a valid BagIt bag: "
                                       + display("; ".join(exc.reasons))))
        return
    if unreadable:
        out.problems.extend(unreadable)
        return
    check = bagit.check_payload(bag, lister())
    if check.reasons:
        out.invalid.append(Invalid("bag", "the primary copy is not a valid BagIt bag: "
                                   + display("; ".join(check.reasons))))
        return
    out.bag = bag
    out.expected = bag.expected
    out.notes.extend(f"BagIt: {display(w)}" for w in bag.warnings)


# -- the reference of one dataset during one audit ------------------------------------

#: Where a dataset's reference comes from: producer manifests, the primary's
#: content (first audit), an accepted new content, none (nothing to compare
#: with), or producer manifests that contradict themselves.
ReferenceSource = Literal["manifest", "primary", "accepted", "none", "invalid"]


@dataclass
class Reference:
    """The reference as the Auditor uses it for one dataset."""

    source: ReferenceSource
    detail: str = ""
    #: With ``invalid``: what is wrong (Invalid.kind), for the next step.
    invalid: tuple[str, ...] = ()
    #: Established from producer manifests, once the primary is listed.
    manifests: bool = False
    #: The copy this audit establishes (or makes) the reference from: the primary.
    made_from: CopySpec | None = None
    #: A reference made from the primary's content this run (first audit, accept).
    new: bool = False
    #: Files in a reference made this run.
    count: int = 0
    #: accept: record every file no manifest names anew from the primary.
    record_all: bool = False
    #: The bag, when the dataset is a BagIt bag: every copy is checked as one.
    bag: bagit.Bag | None = None
    #: With producer manifests: how many files they cover and how many were recorded.
    files: ReferenceFiles | None = None
    #: Warnings for the report.
    notes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.source not in ("none", "invalid")


class ReferenceKeeper:
    """Establishes references and writes them; one per run."""

    def __init__(self, catalog: Catalog, user: str | None = None) -> None:
        self.catalog = catalog
        self.user = user

    def begin(self, dataset: Dataset, accept: bool = False) -> Reference:
        """The dataset's reference before any copy is listed.  ``made_from`` set:
        the primary must be audited first, and ``from_primary`` called with it."""
        if dataset.checksums:
            return Reference("manifest", manifests=True, made_from=dataset.primary,
                             record_all=accept)
        if accept:
            return Reference("accepted", made_from=dataset.primary, new=True)
        info = self.catalog.reference_info(dataset.name)
        if info:
            return Reference(cast(ReferenceSource, info.source))  # as the catalog recorded it
        # First audit without manifests: the primary's content becomes the reference.
        return Reference("primary", made_from=dataset.primary, new=True)

    # -- once the primary is listed --------------------------------------------------
    def from_primary(self, ctx: CopyContext, reference: Reference, result: CopyResult,
                     algorithms: Sequence[str], identity: Mapping[str, str]) -> bool:
        """Establish the reference from the listed primary.  True when the
        primary's audit is over (its content was made the reference, or failed
        to be); False when it is still to be compared with the reference."""
        if not reference.manifests:
            self._record_whole(ctx, reference, result, algorithms, identity)
            return True
        self._establish(ctx, reference, result, algorithms)
        return False

    def primary_unavailable(self, dataset: Dataset, reference: Reference, why: str) -> None:
        """The primary could not be listed (missing, unreachable, failed)."""
        if not reference.manifests:
            reference.source = "none"
            reference.detail = f"no reference yet: {why}"
            return
        info = self.catalog.reference_info(dataset.name)
        if info and info.source == "manifest":
            reference.notes.append(f"the producer manifests could not be read ({why}); "
                                   "using the reference kept in the catalog")
            reference.source = "manifest"
        else:
            reference.source = "none"
            reference.detail = f"no reference: the producer manifests could not be read ({why})"

    def copy_audited(self, ctx: CopyContext, reference: Reference, result: CopyResult,
                     identity: Mapping[str, str], replace: bool) -> None:
        """A copy was compared with the reference: check it is still a valid bag
        (a BagIt dataset), then write what was verified of it, and what its
        matching content taught the reference (sizes, more digests), in one
        transaction."""
        if reference.bag is not None:
            check_bag(reference.bag, ctx, result)
        ctx.workset.commit_copy(ctx.key, ctx.dataset.name, result.state.value, ctx.now,
                                identity, replace=replace)

    def _record_whole(self, ctx: CopyContext, reference: Reference, result: CopyResult,
                      algorithms: Sequence[str], identity: Mapping[str, str]) -> None:
        """First audit (or accept) without manifests: the primary's content
        becomes the reference, with the primary's rows, in one transaction."""
        with ctx.workset.fresh_reference(ctx.dataset.name, ctx.key, ctx.now) as fresh:
            if not make_reference(ctx, algorithms, result, fresh):
                reference.source = "none"
                reference.detail = (f"no reference yet: the primary copy {result.label} is "
                                    f"{result.state.value} "
                                    f"({result.detail or 'see problems'})")
                return
            fresh.commit(reference.source, now_iso(), self.user or current_user(),
                         result.state.value, identity)
        reference.count = result.verified_files

    def _establish(self, ctx: CopyContext, reference: Reference, result: CopyResult,
                   algorithms: Sequence[str]) -> None:
        """Producer manifests: read them from the listed primary, merge them with
        the recorded entries, write the reference if anything changed."""
        dataset, ws = ctx.dataset, ctx.workset
        own: dict[str, tuple[int, str]] = {}  # manifest file -> (size, digests JSON)

        def reader(path: str) -> bytes:
            data = read_file(ctx.backend, ctx.copy.path, path)
            own[path] = (len(data), digests_json(hash_bytes(data, algorithms)))
            return data

        def lister() -> Iterator[tuple[str, int]]:
            return ((e.path, e.size) for e in ctx.listed.regular_files())

        read = read_manifests(dataset.checksums, lister, reader)
        reference.notes.extend(read.notes)
        if read.invalid:
            reference.source, reference.detail = "invalid", "; ".join(i.text for i in read.invalid)
            reference.invalid = tuple(dict.fromkeys(i.kind for i in read.invalid))
            return
        if read.problems:
            self.primary_unavailable(dataset, reference, "; ".join(read.problems))
            if reference.source == "none":
                reference.detail = "; ".join(read.problems)
            return
        reference.bag = read.bag
        established = self.catalog.reference_info(dataset.name)
        first = established is None or established.source != "manifest"
        ws.clear_made()
        ws.record_made((path, None, digests_json(digests))
                       for path, digests in read.expected.files.items())
        ws.record_made((path, size, digests) for path, (size, digests) in own.items()
                       if path not in read.expected.files)
        if not reference.record_all:
            ws.keep_reference_rows(dataset.name)
        if first or reference.record_all:
            problems = self._record_uncovered(ctx, algorithms, result)
            if problems:
                reference.source = "none"
                reference.detail = (f"no reference recorded: {plural(problems, 'file')} of "
                                    "the primary that no manifest names could not be read")
                return
        changed = ws.commit_made_reference(dataset.name, "manifest", now_iso(),
                                           self.user or current_user())
        total = ws.reference_count(dataset.name)
        covered = len(read.expected.files)
        reference.files = ReferenceFiles(len(read.expected.manifests), covered,
                                         total - covered)
        if changed and not first:
            reference.notes.append("the producer manifests changed since the last audit: "
                                   "the reference follows them (files whose checksums "
                                   "changed are verified anew on every copy)")

    def _record_uncovered(self, ctx: CopyContext, algorithms: Sequence[str],
                          result: CopyResult) -> int:
        """Hash the primary's files that nothing staged names yet; stage them as
        recorded entries.  Return how many could not be read (each reported)."""
        failed = 0
        pending = ctx.workset.unstaged_files()
        while True:
            chunk = {e.path: e for e in take(pending, CHUNK)}
            if not chunk:
                return failed
            made = []
            for hashed in ctx.backend.hash_files(ctx.copy.path, list(chunk.values()),
                                                 algorithms, workers=ctx.workers,
                                                 force_full=True, progress=ctx.progress):
                if hashed.error or hashed.size != chunk[hashed.path].size:
                    failed += 1
                    result.add_problem(Problem(
                        hashed.path, ProblemKind.UNREADABLE,
                        hashed.error or "size changed while it was being recorded"))
                    continue
                made.append((hashed.path, hashed.size, digests_json(hashed.digests)))
            ctx.workset.record_made(made)


def read_file(backend: Backend, root: str, path: str) -> bytes:
    """A manifest's bytes from the primary, or ReadFailed saying why not."""
    try:
        with backend.open_read(root, path) as handle:
            return handle.read()
    except (BackendError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReadFailed(reason) from exc


__all__ = ["Invalid", "ManifestRead", "Reference", "ReferenceKeeper", "read_manifests"]
