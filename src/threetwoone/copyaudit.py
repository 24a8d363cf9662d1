"""Audit one copy: list it, compare it with the reference, hash what must be
hashed, give it a state.  Or, on a first audit, make the reference from it.

Everything streams through the workset's temporary tables (see workset.py):
the listing goes in as it is walked, comparisons come back as cursors, files are
hashed in chunks, outcomes are staged and committed in one transaction at the
end.  Memory does not grow with the number of files.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .backends import Backend, Entry, EntryKind, HashResult, WalkProblem
from .checksums import DEFAULT_ALGORITHM, is_weak
from .inventory import CopySpec, Dataset
from .outdated import mark_outdated
from .results import CopyResult, CopyState, Problem, ProblemKind, Verification
from .schedule import NightlyPlanner, VerifyPlan
from .workset import Outcome, PresentRow, Workset

if TYPE_CHECKING:
    from . import bag as bagit

#: Files handed to a backend at a time: bounds memory, lets --time-limit act.
CHUNK = 2000


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
    progress: Callable[[int, int], None]
    #: Told (files, bytes) trusted from the catalog without a read, for the progress line.
    cached: Callable[[int, int], None] = lambda files, size: None
    #: Algorithms the reference holds for every file (most useful first).
    reference_algorithms: Sequence[str] = (DEFAULT_ALGORITHM,)
    walk_problems: list[WalkProblem] = field(default_factory=list)


def list_copy(ctx: CopyContext) -> None:
    """Walk the copy into the workset; remember folders that could not be listed."""
    patterns = ctx.dataset.exclude

    def entries() -> Iterator[Entry]:
        for item in ctx.backend.walk(ctx.copy.path):
            if isinstance(item, WalkProblem):
                ctx.walk_problems.append(item)
            elif not (patterns and _excluded(item.path, patterns)):
                yield item

    ctx.workset.reset()
    ctx.workset.add_listing(entries())


def _excluded(path: str, patterns: Iterable[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _report_walk_problems(ctx: CopyContext, result: CopyResult) -> None:
    for problem in ctx.walk_problems:
        result.add_problem(Problem(problem.path or ".", ProblemKind.UNREADABLE,
                                   f"folder could not be listed: {problem.detail}"))


def _chunks(items: Iterable[PresentRow], size: int = CHUNK) -> Iterator[list[PresentRow]]:
    chunk: list[PresentRow] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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

def make_reference(ctx: CopyContext, algorithms: Sequence[str], result: CopyResult) -> bool:
    """Hash the whole copy (the primary) into staged reference rows.  True when
    every file was read: only then may the caller commit it."""
    _report_walk_problems(ctx, result)
    for other in ctx.workset.others():
        result.files.extra += 1
        result.add_problem(Problem(other.path, ProblemKind.EXTRA, _other_detail(other)))
    count, _size = ctx.workset.listed_files()
    result.files.present = result.files.expected = count
    if not count and not ctx.walk_problems:
        result.state = CopyState.ERROR
        result.detail = ("the primary copy has no files on its first audit; refusing to "
                         "record an empty reference (is the disk mounted?)")
        return False
    entries = {}
    made: list[tuple[str, int, str]] = []
    outcomes: list[Outcome] = []
    files = ctx.workset.files()
    while True:
        entries = {e.path: e for e in take(files, CHUNK)}
        if not entries:
            break
        for hashed in ctx.backend.hash_files(ctx.copy.path, list(entries.values()),
                                             algorithms, workers=ctx.workers,
                                             force_full=True, progress=ctx.progress):
            entry = entries[hashed.path]
            _add_method(result, hashed)
            _count_read(result, hashed)
            error = hashed.error or _short_read(entry, hashed)
            if error:
                result.add_problem(Problem(hashed.path, ProblemKind.UNREADABLE, error))
                continue
            made.append((hashed.path, hashed.size, digests_json(hashed.digests)))
            # Version None: the one the new reference gives this file.
            outcomes.append((hashed.path, entry.size, entry.mtime_ns, entry.ident, ctx.now,
                             "ok", ctx.now, "full", None))
            result.bytes += hashed.size
            result.verified_files += 1
        ctx.workset.record_made(made)
        ctx.workset.record(outcomes)
        made.clear()
        outcomes.clear()
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
    ws, dataset = ctx.workset, ctx.dataset
    files = result.files
    files.expected = ws.reference_count(dataset.name)
    _report_walk_problems(ctx, result)
    unlisted = [p.path for p in ctx.walk_problems]
    for path, kind in ws.missing(dataset.name):
        if any(folder == "" or path.startswith(folder + "/") for folder in unlisted):
            continue  # reported as an unreadable folder
        detail = ""
        if kind is EntryKind.SYMLINK:
            detail = "is a symlink (not followed)"
        elif kind is EntryKind.SPECIAL:
            detail = "is a FIFO, socket or device (not opened)"
        files.missing += 1
        result.add_problem(Problem(path, ProblemKind.MISSING, detail))
    for extra in ws.extras(dataset.name):
        files.extra += 1
        detail = "not in the reference" if extra.kind is EntryKind.FILE else \
            _other_detail(extra)
        result.add_problem(Problem(extra.path, ProblemKind.EXTRA, detail))

    # --verify full reads every byte on every backend: a server's checksum may be
    # compared on top, never instead.
    full = plan.mode == "full" or ctx.force_full
    hasher = _ChunkHasher(ctx, result, manifest_reference, full)
    # 1. Files that must be established: new, changed, not ok last time, checked
    #    against an older reference version (or everything).
    must = ws.present(dataset.name, ctx.key, trusted=None if plan.mode == "full" else False)
    for chunk in _chunks(must):
        hasher.run(chunk, scheduled=False)
    # 2. Trusted files: cached, or re-read by the fixity schedule.
    if plan.mode == "changed":
        count, size, oldest = ws.trusted_totals(dataset.name, ctx.key)
        hasher.cache(count, size, oldest)
    elif plan.mode == "scheduled":
        _scheduled(ctx, plan, last_audit_at, hasher)
    hasher.flush()

    mark_outdated(ws.db, dataset.name, result)
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
               hasher: _ChunkHasher) -> None:
    ws, dataset = ctx.workset, ctx.dataset
    total_files, total_bytes, _oldest = ws.trusted_totals(dataset.name, ctx.key)
    planner = NightlyPlanner(plan, ctx.now, last_audit_at, ws.listed_files()[1])
    offered = offered_bytes = 0
    chunk: list[PresentRow] = []
    stopped_at: float | None = None
    rows = ws.present(dataset.name, ctx.key, trusted=True, oldest_first=True)
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


class _ChunkHasher:
    """Hashes chunks of present files and folds the results into the copy result."""

    def __init__(self, ctx: CopyContext, result: CopyResult, manifest_reference: bool,
                 full: bool) -> None:
        self.ctx = ctx
        self.result = result
        self.manifest_reference = manifest_reference
        #: Every byte must be read this run (--verify full, --force-download).
        self.full = full
        #: The oldest full read over the files seen so far; ``never_read`` when some
        #: file's bytes were never read and matched (only a server digest vouches).
        self.oldest = ctx.now
        self.never_read = False
        #: Files settled by a server's digest this run (not read).
        self.digest_files = 0
        self.outcomes: list[Outcome] = []
        self.learnt: list[tuple[str, int, str, int]] = []

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

    def run(self, chunk: list[PresentRow], scheduled: bool) -> None:
        ctx, result = self.ctx, self.result
        groups: dict[bool, list[PresentRow]] = {True: [], False: []}
        for row in chunk:
            entry = row.entry
            if row.ref_size is not None and entry.size != row.ref_size:
                result.files.present += 1
                result.files.corrupt += 1
                result.add_problem(Problem(entry.path, ProblemKind.CORRUPT,
                                           f"size {entry.size} bytes, reference "
                                           f"{row.ref_size} bytes"))
                self._stage(row, ctx.now, "corrupt", None, "full")
                if self.manifest_reference:
                    continue  # no need to read it; with a recorded reference, read it
                    # below only to tell which copies agree (majority view)
            groups[self._must_read(row, scheduled)].append(row)
        weak: list[PresentRow] = []
        for force, rows in groups.items():
            if rows:
                weak += self._hash(rows, force)
        if weak:
            # A 32-bit checksum matched, which proves nothing: read the bytes.
            self._hash(weak, True)

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
            weak += self._hash_group(group, refs, force)
        return weak

    def _hash_group(self, rows: list[PresentRow], refs: dict[str, dict[str, str]],
                    force: bool) -> list[PresentRow]:
        ctx = self.ctx
        by_path = {row.entry.path: row for row in rows}
        algorithms = _algorithms_for(ctx, (refs[path] for path in by_path))
        # Checksums the listing carried (dCache) spare the backend a request per file.
        entries = ctx.workset.with_listed_digests([r.entry for r in rows])
        weak = []
        for hashed in ctx.backend.hash_files(ctx.copy.path, entries, algorithms,
                                             workers=ctx.workers, force_full=force,
                                             progress=ctx.progress):
            row = by_path[hashed.path]
            ref = refs[hashed.path]
            _count_read(self.result, hashed)
            if row.ref_size is not None and row.entry.size != row.ref_size:
                if hashed.digests and not hashed.error:
                    self.result.mismatches[hashed.path] = _digest_key(hashed, ref)
                continue
            if self._fold(row, hashed, ref):
                weak.append(row)
        return weak

    def _fold(self, row: PresentRow, hashed: HashResult, ref: dict[str, str]) -> bool:
        """Fold one result in; True when only a weak server checksum matched (the
        caller reads the file instead)."""
        ctx, result = self.ctx, self.result
        entry = row.entry
        _add_method(result, hashed, ref)
        error = hashed.error or _short_read(entry, hashed)
        if error:
            result.files.present += 1
            result.add_problem(Problem(hashed.path, ProblemKind.UNREADABLE, error))
            # A failed read invalidates what the catalog knew of the file: the next
            # run reads it again, and the copy stays "error" until it reads ok.
            self._stage(row, ctx.now, "unreadable", None, None)
            return False
        compared = [a for a in hashed.digests if a in ref]
        if not compared:
            # Nothing to compare with: unverified, never "corrupt".
            result.files.present += 1
            result.add_problem(Problem(
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
            result.add_problem(Problem(hashed.path, ProblemKind.CORRUPT, verdict))
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
        self.outcomes.append((entry.path, entry.size, entry.mtime_ns, entry.ident, when,
                              outcome, full_at, evidence, row.ref_version))
        if len(self.outcomes) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        self.ctx.workset.record(self.outcomes)
        self.ctx.workset.record_learnt(self.learnt)
        self.outcomes.clear()
        self.learnt.clear()


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


def _algorithms_for(ctx: CopyContext, refs: Iterable[dict[str, str]]) -> list[str]:
    """What to ask the backend for: algorithms every file of the chunk has in the
    reference, server-side ones first, then our default."""
    common: set[str] | None = None
    for ref in refs:
        common = set(ref) if common is None else common & set(ref)
    if not common:
        common = set(ctx.reference_algorithms) or {DEFAULT_ALGORITHM}
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

    check = bagit.check_payload(bag, ((e.path, e.size) for e in ctx.workset.files()))
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
