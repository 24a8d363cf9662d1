"""Audit one copy: list it, compare it with the reference, hash what must be
hashed, give it a state.  Or, on a first audit, make the reference from it.

Everything streams: the listing comes sorted by path (listing.py) and is
merged with the catalog's rows as it is walked (copymerge.py); the files whose
content must be established are handed to the backend as the merge finds them
(a local copy's worker processes start hashing while the walk goes on);
outcomes are staged in temporary tables and committed in one transaction at
the end (workset.py).  Memory does not grow with the number of files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .backends import Backend, CopyFailed, Entry, EntryKind, HashResult, WalkProblem
from .checksums import DEFAULT_ALGORITHM, is_weak
from .copymerge import CopyMerge, FullReads
from .events import ProgressCallback
from .inventory import CopySpec, Dataset
from .listing import ENCODING, Listing
from .outdated import mark_outdated
from .results import PROBLEMS_KEPT, CopyResult, CopyState, Problem, ProblemKind, Verification
from .schedule import NightlyPlanner, VerifyPlan
from .words import plural
from .workset import FreshReference, FreshRow, Outcome, PresentRow, Workset

if TYPE_CHECKING:
    from . import bag as bagit

#: Files staged, deferred or re-read at a time: bounds memory, lets --time-limit act.
CHUNK = 2000

T = TypeVar("T")


@dataclass
class CopyContext:
    """What one copy audit needs from the run."""

    backend: Backend
    dataset: Dataset
    copy: CopySpec
    key: str  # the copy's key in the catalog
    workset: Workset
    workers: int
    force_full: bool
    now: float
    deadline: float | None
    clock: Callable[[], float]
    progress: ProgressCallback
    #: Told (files, bytes) trusted from the catalog without a read, for the progress line.
    cached: ProgressCallback = lambda files, size: None
    #: The copy's listing, once ``list_copy`` walked it.
    listing: Listing | None = None
    #: The last full read of each reference file as this audit leaves the
    #: catalog, once the copy was compared (or made the reference).
    full_reads: FullReads | None = None

    @property
    def walk_problems(self) -> list[WalkProblem]:
        return self.listing.problems if self.listing is not None else []

    @property
    def listed(self) -> Listing:
        assert self.listing is not None, "list_copy first"
        return self.listing


def list_copy(ctx: CopyContext, single_pass: bool = False) -> None:
    """Walk the copy (see listing.py).  Producer manifests and bags are found
    in the listing before it is compared: then it is kept in a table whole.
    ``single_pass``: walked as it is read instead, once (a sorted walk only)."""
    ctx.listing = ctx.workset.begin_copy(ctx.backend.walk(ctx.copy.path), ctx.dataset.exclude,
                                         ctx.backend.sorted_walk, bool(ctx.dataset.checksums),
                                         single_pass)


class ProblemLog:
    """Problems kept in the order reports list them (walk problems, missing,
    extra, then what reading found), although the merge meets them interleaved.
    At most PROBLEMS_KEPT: a copy keeps no more than that anyway."""

    def __init__(self) -> None:
        self.kept: list[Problem] = []
        self.omitted = 0
        self.omitted_unreadable = 0

    def add_problem(self, problem: Problem) -> None:
        if len(self.kept) < PROBLEMS_KEPT:
            self.kept.append(problem)
            return
        self.omitted += 1
        if problem.problem is ProblemKind.UNREADABLE:
            self.omitted_unreadable += 1

    def replay(self, result: CopyResult) -> None:
        for problem in self.kept:
            result.add_problem(problem)
        result.problems_omitted += self.omitted
        result.files.unreadable += self.omitted_unreadable
        self.kept.clear()
        self.omitted = self.omitted_unreadable = 0


def _report_walk_problems(ctx: CopyContext, result: CopyResult) -> None:
    for problem in ctx.walk_problems:
        result.add_problem(Problem(problem.path or ".", ProblemKind.UNREADABLE,
                                   f"folder could not be listed: {problem.detail}"))


def hash_items(ctx: CopyContext, items: Iterable[T], entry_of: Callable[[T], Entry],
               algorithms: Sequence[str], force: bool) -> Iterator[tuple[T, HashResult]]:
    """Hash the items' files in one call that takes them as the backend needs
    them (``Backend.hash_files`` takes any iterable); each result comes with its item.  Only the
    items handed over and not yet answered are held."""
    waiting: dict[str, T] = {}

    def entries() -> Iterator[Entry]:
        for item in items:
            entry = entry_of(item)
            waiting[entry.path] = item
            yield entry

    for hashed in ctx.backend.hash_files(ctx.copy.path, entries(), algorithms,
                                          workers=ctx.workers, force_full=force,
                                          progress=ctx.progress):
        yield waiting.pop(hashed.path), hashed


def _entry(entry: Entry) -> Entry:
    return entry


def _row_entry(row: PresentRow) -> Entry:
    return row.entry


def _add_method(result: CopyResult, hashed: HashResult,
                ref: Mapping[str, str] | None = None) -> None:
    label = hashed.via or ("digest" if hashed.method == "digest" else "read")
    if hashed.method == "digest":
        compared = sorted(a for a in hashed.digests if ref is None or a in ref)
        if compared and is_weak(compared):
            # Weak evidence, shown as such: it can reveal a change, never prove
            # content intact (the file is downloaded to verify it).
            label = f"digest ({', '.join(compared)})"
        elif not label.startswith("digest"):
            label = f"digest: {label}"
    if label not in result.methods:
        result.methods.append(label)


def _count_read(result: CopyResult, hashed: HashResult) -> None:
    """Bytes read this run (the report's ``bytes_read``): a server digest reads none."""
    if hashed.method == "full" and not hashed.error:
        result.bytes_read += hashed.size


# -- making a reference -----------------------------------------------------------

def make_reference(ctx: CopyContext, algorithms: Sequence[str], result: CopyResult,
                   fresh_reference: FreshReference) -> bool:
    """Hash the whole copy (the primary) into ``fresh_reference``.  True when
    every file was read: only then may the caller commit it."""
    listing = ctx.listed
    extras, problems = ProblemLog(), ProblemLog()
    fresh: list[FreshRow] = []
    file_kind = EntryKind.FILE
    ctx.full_reads = full_reads = FullReads()

    def files() -> Iterator[Entry]:
        for entry in listing.entries():
            if entry.kind is file_kind:
                yield entry
            else:
                result.files.extra += 1
                extras.add_problem(Problem(entry.path, ProblemKind.EXTRA,
                                           _other_detail(entry)))

    # Hot loop (once per file of the primary on a first audit).
    read = size = verified = 0
    for entry, hashed in hash_items(ctx, files(), _entry, algorithms, force=True):
        if hashed.via is not None or hashed.method != "full":
            _add_method(result, hashed)
        elif "read" not in result.methods:
            result.methods.append("read")
        if hashed.method == "full" and not hashed.error:
            read += hashed.size  # bytes_read, as _count_read counts them
        error = hashed.error or _short_read(entry, hashed)
        if error:
            problems.add_problem(Problem(hashed.path, ProblemKind.UNREADABLE, error))
            continue
        size += hashed.size
        fresh.append((entry.path.encode(ENCODING, "surrogateescape"), hashed.size,
                      digests_json(hashed.digests), entry.mtime_ns, entry.ident))
        verified += 1
        if len(fresh) >= CHUNK:
            fresh_reference.add(fresh)
            fresh = []
    fresh_reference.add(fresh)
    result.bytes_read += read
    result.bytes += size
    result.verified_files += verified
    full_reads.add_many(ctx.now, verified)
    _report_walk_problems(ctx, result)
    extras.replay(result)
    problems.replay(result)
    result.files.present = result.files.expected = listing.files
    if not listing.files and not ctx.walk_problems:
        result.state = CopyState.ERROR
        result.detail = ("the primary copy has no files on its first audit; refusing to "
                         "record an empty reference (is the disk mounted?)")
        return False
    result.verification = Verification.FULL
    result.verified_at = ctx.now
    if result.files.unreadable or ctx.walk_problems:
        result.state = CopyState.ERROR
        result.detail = "not every file of the primary could be read; no reference recorded"
        return False
    return True


def digests_json(digests: Mapping[str, str]) -> str:
    """``{algorithm: hex}`` as JSON, written directly: algorithm names and hex
    digests need no escaping, and json.dumps costs several microseconds a file."""
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in sorted(digests.items())) + "}"


def take(iterator: Iterator[Entry], count: int) -> list[Entry]:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) >= count:
            break
    return out


def _other_detail(entry: Entry) -> str:
    return ("symlink, not followed" if entry.kind is EntryKind.SYMLINK
            else "FIFO, socket or device, not opened")


# -- comparing with the reference --------------------------------------------------

def compare(ctx: CopyContext, plan: VerifyPlan, last_audit_at: float | None,
            manifest_reference: bool, result: CopyResult) -> None:
    """Compare the listed copy with the reference in the catalog and give it a state."""
    files = result.files
    missing, extras = ProblemLog(), ProblemLog()
    unlisted = [p.path for p in ctx.walk_problems]

    hidden = 0  # reference files below folders that could not be listed

    def on_missing(path: str, kind: EntryKind | None) -> None:
        nonlocal hidden
        if any(folder == "" or path.startswith(folder + "/") for folder in unlisted):
            hidden += 1
            return  # reported as an unreadable folder
        detail = ""
        if kind is EntryKind.SYMLINK:
            detail = "is a symlink (not followed)"
        elif kind is EntryKind.SPECIAL:
            detail = "is a FIFO, socket or device (not opened)"
        files.missing += 1
        missing.add_problem(Problem(path, ProblemKind.MISSING, detail))

    def on_extra(extra: Entry) -> None:
        files.extra += 1
        detail = "not in the reference" if extra.kind is EntryKind.FILE else \
            _other_detail(extra)
        extras.add_problem(Problem(extra.path, ProblemKind.EXTRA, detail))

    # --verify full reads every byte on every backend: a server's checksum may be
    # compared on top, never instead.
    full = plan.mode == "full" or ctx.force_full
    ahead = ctx.workset.read_after(ctx.key, ctx.now)
    if ahead:
        result.notes.append(
            f"copy {result.label}: the catalog dates the last full read of "
            f"{plural(ahead, 'file')} later than now (the clock was ahead then, or is "
            "behind now): they count as never read in full until they are read again")
    merge = CopyMerge(ctx.workset.db, ctx.dataset.name, ctx.key, ctx.listed, on_missing,
                      on_extra, every_present=plan.mode == "full",
                      note_untrusted=plan.mode == "scheduled", now=ctx.now)
    ctx.full_reads = merge.full_reads
    hasher = _Hasher(ctx, result, manifest_reference, full, merge)
    # 1. Files that must be established (new, changed, not ok last time, checked
    #    against an older reference version; or everything), as the merge finds them.
    hasher.stream(merge.present(), scheduled=False)
    files.expected = merge.expected
    # 2. Trusted files: cached, or re-read by the fixity schedule.
    if plan.mode == "changed":
        hasher.cache(merge.trusted_files, merge.trusted_bytes, merge.oldest)
    elif plan.mode == "scheduled":
        _scheduled(ctx, plan, last_audit_at, hasher, merge)
    hasher.flush()
    if files.present + files.missing + hidden != files.expected:
        # Every reference file is present (settled one way or another), missing,
        # or below a folder that could not be listed: never judge a copy on less.
        raise CopyFailed(f"the comparison accounted for {files.present + files.missing + hidden}"
                         f" of the reference's {files.expected} files (a bug: please report "
                         "it); the copy is not judged")
    _report_walk_problems(ctx, result)
    missing.replay(result)
    extras.replay(result)
    hasher.problems.replay(result)

    mark_outdated(ctx.workset.db, ctx.dataset.name, result)
    if files.corrupt:
        result.state = CopyState.CORRUPT
    elif files.unreadable or ctx.walk_problems:
        result.state = CopyState.ERROR
        result.detail = "not every file could be read"
    elif files.outdated:
        result.state = CopyState.OUTDATED
    elif files.missing:
        result.state = CopyState.INCOMPLETE
    else:
        result.state = CopyState.INTACT
    result.verified_at = None if hasher.never_read else hasher.oldest
    if result.cached_files:
        result.verification = Verification.CACHED
    elif hasher.digest_files:
        result.verification = Verification.DIGEST
    elif result.verified_files:
        result.verification = Verification.FULL


def _scheduled(ctx: CopyContext, plan: VerifyPlan, last_audit_at: float | None,
               hasher: _Hasher, merge: CopyMerge) -> None:
    total_files, total_bytes = merge.trusted_files, merge.trusted_bytes
    planner = NightlyPlanner(plan, ctx.now, last_audit_at, ctx.listed.bytes)
    offered = offered_bytes = 0
    chunk: list[PresentRow] = []
    stopped_at: float | None = None
    rows = ctx.workset.trusted_oldest_first(ctx.dataset.name, ctx.key, ctx.now)
    for row in rows:
        decision = planner.take(row.entry.size, row.before_full_at)
        if decision is None:
            stopped_at = row.before_full_at
            break
        offered += 1
        offered_bytes += row.entry.size
        if decision:
            chunk.append(row)
            if len(chunk) >= CHUNK:
                hasher.run_or_cache(chunk)
                chunk = []
        else:
            hasher.cache(1, row.entry.size, row.before_full_at)
    if chunk:
        hasher.run_or_cache(chunk)
    # Everything after the stop was read more recently than it: trusted, the oldest
    # full read being the stop row's.
    hasher.cache(total_files - offered, total_bytes - offered_bytes, stopped_at)


class _Hasher:
    """Establishes present files and folds the results into the copy result."""

    def __init__(self, ctx: CopyContext, result: CopyResult, manifest_reference: bool,
                 full: bool, merge: CopyMerge) -> None:
        self.ctx = ctx
        self.result = result
        #: Where each established file's last full read goes (see FullReads), and
        #: whether the merge tallied the trusted ones already.
        self.full_reads = merge.full_reads
        self.trusted_tallied = not merge.every_present
        self.manifest_reference = manifest_reference
        #: Every byte must be read this run (--verify full, --force-download).
        self.full = full
        #: The oldest full read over the files seen so far; ``never_read`` when some
        #: file's bytes were never read and matched (only a server digest vouches).
        self.oldest = ctx.now
        self.never_read = False
        #: Files settled by a server's digest this run (not read).
        self.digest_files = 0
        #: What reading found, reported after the missing and extra files.
        self.problems = ProblemLog()
        self.outcomes: list[Outcome] = []
        self.learnt: list[tuple[str, int, str, int]] = []
        #: Algorithms to ask for, per set of algorithms the reference has.
        self._algorithms: dict[frozenset[str], list[str]] = {}

    def _full_read(self, when: float | None) -> None:
        if when is None:
            self.never_read = True
        else:
            self.oldest = min(self.oldest, when)

    def cache(self, count: int, size: int, oldest: float | None) -> None:
        if count <= 0:
            return
        self.result.cached_files += count
        self.result.files.present += count
        self.result.bytes += size
        self._full_read(oldest)
        self.ctx.cached(count, size)

    def run_or_cache(self, chunk: list[PresentRow]) -> None:
        """Scheduled re-reads: once --time-limit has passed, trust the rest."""
        if self.ctx.deadline is not None and self.ctx.clock() >= self.ctx.deadline:
            for row in chunk:
                self.cache(1, row.entry.size, row.before_full_at)
            return
        self.run(chunk, scheduled=True)

    def _must_read(self, row: PresentRow, scheduled: bool) -> bool:
        """Must this file's bytes be read, or may a server's digest settle it?

        Read: in a full verification; for a fixity re-read (a checksum the storage
        recorded at write time cannot see bits that rotted since: dCache, XRootD
        and S3 all keep theirs); and for a file whose last check failed (corrupt,
        unreadable, or the server's checksum disagreed): only its bytes clear it."""
        return (self.full or scheduled
                or (row.before_result is not None and row.before_result != "ok"))

    def _admit(self, row: PresentRow) -> bool:
        """A file whose size is not the reference's is corrupt, whatever its
        bytes: say so; False when there is no need to read it."""
        entry = row.entry
        if row.ref_size is None or entry.size == row.ref_size:
            return True
        result = self.result
        result.files.present += 1
        result.files.corrupt += 1
        self.problems.add_problem(Problem(entry.path, ProblemKind.CORRUPT,
                                          f"size {entry.size} bytes, reference "
                                          f"{row.ref_size} bytes"))
        self._stage(row, self.ctx.now, "corrupt", None, "full")
        # No need to read it; with a recorded reference, it is read all the same to
        # tell which copies agree (majority view).
        return not self.manifest_reference

    def run(self, chunk: list[PresentRow], scheduled: bool) -> None:
        self._establish([(row, False) for row in chunk if self._admit(row)], scheduled)

    def _establish(self, rows: list[tuple[PresentRow, bool]], scheduled: bool) -> None:
        """Hash admitted rows, each (row, its bytes must be read)."""
        groups: dict[bool, list[PresentRow]] = {True: [], False: []}
        for row, force in rows:
            groups[force or self._must_read(row, scheduled)].append(row)
        weak: list[PresentRow] = []
        for force, group in groups.items():
            if group:
                weak += self._hash(group, force)
        if weak:
            # A 32-bit checksum matched, which proves nothing: read the bytes.
            self._hash(weak, True)

    def stream(self, rows: Iterable[PresentRow], scheduled: bool) -> None:
        """Establish rows as they come, in one hashing call for as long as they
        share its arguments (the algorithms, and whether the bytes must be read):
        the others wait in the workset and are hashed after, as are files a weak
        server checksum vouched for."""
        admitted = (row for row in rows if self._admit(row))
        first = next(admitted, None)
        if first is None:
            return
        lane = self._lane(first, scheduled)
        deferred: list[tuple[PresentRow, bool]] = []

        def same_lane() -> Iterator[tuple[PresentRow, dict[str, str]]]:
            yield first, lane[2]
            for row in admitted:
                key = self._lane(row, scheduled)
                if key[:2] == lane[:2]:
                    yield row, key[2]
                else:
                    deferred.append((row, False))
                    if len(deferred) >= CHUNK:
                        self.ctx.workset.defer(deferred)
                        deferred.clear()

        for (row, ref), hashed in hash_items(self.ctx, same_lane(), _first_entry,
                                             lane[1], lane[0]):
            if self._take(row, ref, hashed):
                deferred.append((row, True))  # read its bytes after all
        self.ctx.workset.defer(deferred)
        for page in self.ctx.workset.deferred(CHUNK):
            self._establish(page, scheduled)

    def _lane(self, row: PresentRow, scheduled: bool
              ) -> tuple[bool, tuple[str, ...], dict[str, str]]:
        """(read the bytes, algorithms to ask for, the reference's digests)."""
        ref: dict[str, str] = json.loads(row.ref_digests)
        return self._must_read(row, scheduled), tuple(self._algorithms_for([ref])), ref

    def _algorithms_for(self, refs: Iterable[dict[str, str]]) -> list[str]:
        common: set[str] | None = None
        for ref in refs:
            common = set(ref) if common is None else common & set(ref)
        key = frozenset(common or ())
        if key not in self._algorithms:
            self._algorithms[key] = _algorithms_for(self.ctx, key)
        return self._algorithms[key]

    def _hash(self, rows: list[PresentRow], force: bool) -> list[PresentRow]:
        """Hash ``rows`` (reading every byte when ``force``) and fold the results;
        return the rows that only a weak server checksum vouched for.  Rows whose
        references hold different algorithms (a producer's md5 beside entries
        recorded with xxh3_128) are hashed in one group per set of algorithms."""
        refs = {row.entry.path: json.loads(row.ref_digests) for row in rows}
        groups: dict[frozenset[str], list[PresentRow]] = {}
        for row in rows:
            groups.setdefault(frozenset(refs[row.entry.path]), []).append(row)
        weak = []
        for group in groups.values():
            algorithms = self._algorithms_for(refs[row.entry.path] for row in group)
            for row, hashed in hash_items(self.ctx, group, _row_entry, algorithms, force):
                if self._take(row, refs[row.entry.path], hashed):
                    weak.append(row)
        return weak

    def _take(self, row: PresentRow, ref: dict[str, str], hashed: HashResult) -> bool:
        """One result; True when only a weak server checksum matched (the
        caller reads the file instead)."""
        _count_read(self.result, hashed)
        if row.ref_size is not None and row.entry.size != row.ref_size:
            if hashed.digests and not hashed.error:
                self.result.mismatches[hashed.path] = _digest_key(hashed, ref)
            return False
        return self._fold(row, hashed, ref)

    def _fold(self, row: PresentRow, hashed: HashResult, ref: dict[str, str]) -> bool:
        """Fold one result in; True when only a weak server checksum matched (the
        caller reads the file instead)."""
        ctx, result = self.ctx, self.result
        entry = row.entry
        _add_method(result, hashed, ref)
        error = hashed.error or _short_read(entry, hashed)
        if error:
            result.files.present += 1
            self.problems.add_problem(Problem(hashed.path, ProblemKind.UNREADABLE, error))
            # A failed read invalidates what the catalog knew of the file: the next
            # run reads it again, and the copy stays "error" until it reads ok.
            self._stage(row, ctx.now, "unreadable", None, None)
            return False
        compared = [a for a in hashed.digests if a in ref]
        if not compared:
            # Nothing to compare with: unverified, never "corrupt".
            result.files.present += 1
            self.problems.add_problem(Problem(
                hashed.path, ProblemKind.UNREADABLE,
                f"no comparable checksum (got {', '.join(hashed.digests) or 'none'}, "
                f"reference has {', '.join(ref)})"))
            self._stage(row, ctx.now, "unreadable", None, None)
            return False
        verdict = _compare_digests(hashed, ref)
        read = hashed.method != "digest"
        if verdict is None and not read and is_weak(compared):
            return True  # not counted yet: the caller reads it
        result.files.present += 1
        result.verified_files += 1
        evidence = "full" if read else "digest"
        if verdict is not None:
            result.files.corrupt += 1
            if row.trusted and read and (hashed.mtime_ns is None
                                         or hashed.mtime_ns == entry.mtime_ns):
                verdict += (" - content changed without a modification: size and mtime are "
                            "as when it last verified ok (silent corruption, bit rot)")
            self.problems.add_problem(Problem(hashed.path, ProblemKind.CORRUPT, verdict))
            result.mismatches[hashed.path] = _digest_key(hashed, ref)
            self._stage(row, ctx.now, "corrupt", None, evidence)
            return False
        result.bytes += entry.size
        if read:
            full_at: float | None = ctx.now
            if row.ref_size is None or set(hashed.digests) - set(ref):
                # Content that was read and matched teaches the reference its size and
                # extra digests (xxh3_128 next to a producer's md5): later audits are
                # cheaper.  Never from a server's digest: that is not the bytes.
                self.learnt.append((hashed.path, entry.size, digests_json(hashed.digests),
                                    row.ref_version))
        else:
            # A strong server digest settles the content, but it is not a read of
            # the bytes: it never sets (or keeps) the time of the last full read.
            self.digest_files += 1
            full_at = None
        self._full_read(full_at)
        self._stage(row, ctx.now, "ok", full_at, evidence)
        return False

    def _stage(self, row: PresentRow, when: float, outcome: str, full_at: float | None,
               evidence: str | None) -> None:
        entry = row.entry
        after = full_at if outcome == "ok" else None
        if row.trusted and self.trusted_tallied:
            # Tallied by the merge as trusted; the fixity schedule read it again.
            self.full_reads.replace(row.before_full_at, after)
        else:
            self.full_reads.add(after)
        if outcome != "ok":  # reported as a corrupt or unreadable file
            self.full_reads.damaged += 1
        self.outcomes.append((entry.path, entry.size, entry.mtime_ns, entry.ident, when,
                              outcome, full_at, evidence, row.ref_version))
        if len(self.outcomes) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        self.ctx.workset.record(self.outcomes)
        self.ctx.workset.record_learnt(self.learnt)
        self.outcomes.clear()
        self.learnt.clear()


def _first_entry(item: tuple[PresentRow, dict[str, str]]) -> Entry:
    return item[0].entry


def _short_read(entry: Entry, hashed: HashResult) -> str | None:
    """A read (or a server's answer) whose byte count is not the listed size is
    an unreadable read, never corrupt content: cut transfers, files truncated or
    grown during the audit.  Checked here for every backend."""
    if hashed.size == entry.size:
        return None
    if hashed.method == "digest":
        return (f"the server reports {hashed.size} bytes, the listing said {entry.size} "
                "(changed during the audit?)")
    return (f"read {hashed.size} bytes, the listing said {entry.size} (cut short, or "
            "changed during the audit)")


def _algorithms_for(ctx: CopyContext, common: frozenset[str]) -> list[str]:
    """What to ask the backend for, given the algorithms every file has in the
    reference: server-side ones first, then our default."""
    if not common:
        common = frozenset({DEFAULT_ALGORITHM})
    # Server-side digests the backend may answer without reading, then the one
    # algorithm to compute if it must read: asking for more would make a backend
    # that reads compute every one of them.
    server = [a for a in ctx.backend.digest_algorithms() if a in common]
    preference = [DEFAULT_ALGORITHM, "sha256", "md5", "sha1", "sha512", "adler32", "crc32"]
    computed = next((a for a in preference if a in common), sorted(common)[0])
    return list(dict.fromkeys([*server, computed]))


def _digest_key(hashed: HashResult, ref: dict[str, str]) -> str:
    """"algorithm:digest" on an algorithm the reference has, to group copies."""
    common = [a for a in hashed.digests if a in ref] or sorted(hashed.digests)
    return f"{common[0]}:{hashed.digests[common[0]]}"


def _compare_digests(hashed: HashResult, ref: dict[str, str]) -> str | None:
    """None when the content matches; else the detail of the mismatch."""
    for algorithm in (a for a in hashed.digests if a in ref):
        if hashed.digests[algorithm].lower() != ref[algorithm].lower():
            how = " (server-side digest)" if hashed.method == "digest" else ""
            return (f"{algorithm} {hashed.digests[algorithm]}{how}, "
                    f"reference {ref[algorithm]}")
    return None


# -- BagIt ---------------------------------------------------------------------------

def check_bag(bag: bagit.Bag, ctx: CopyContext, result: CopyResult) -> None:
    """After ``compare``: is this copy still a valid bag?  A payload file no
    manifest lists or a wrong Payload-Oxum make it invalid (not intact: its
    content is not the bag's); files listed in fetch.txt and absent make it a
    holey bag (incomplete, still to be fetched)."""
    from . import bag as bagit  # imported only for datasets that are bags

    check = bagit.check_payload(bag, ((e.path, e.size) for e in ctx.listed.regular_files()))
    missing = {p.path: p for p in result.problems if p.problem is ProblemKind.MISSING}
    for path in check.unfetched:
        if path in missing:
            index = result.problems.index(missing[path])
            result.problems[index] = Problem(path, ProblemKind.MISSING,
                                             "listed in fetch.txt, not fetched (holey bag)")
    for path, hint in check.hints.items():
        if path in missing and path not in check.unfetched:
            index = result.problems.index(missing[path])
            result.problems[index] = Problem(path, ProblemKind.MISSING, hint)
    for path in check.extra:
        for index, problem in enumerate(result.problems):
            if problem.path == path and problem.problem is ProblemKind.EXTRA:
                result.problems[index] = Problem(path, ProblemKind.EXTRA,
                                                 "payload file in no bag manifest: the bag "
                                                 "is invalid")
    if check.reasons and result.state in (CopyState.INTACT, CopyState.INCOMPLETE):
        result.state = CopyState.CORRUPT
        result.detail = "not a valid BagIt bag: " + "; ".join(check.reasons)
