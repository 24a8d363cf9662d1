"""What the audit of one copy stages before it commits, as temporary tables
next to the catalog.

A copy may hold millions of files.  The comparison itself streams (listing.py,
copymerge.py); what it finds to write goes into temporary SQLite tables, then
into the catalog in one transaction per copy: outcomes of the files whose
content was established, rows of files no longer there, reference rows made
or learnt.  Memory stays flat (SQLite's page cache and the files being
hashed), whatever the size of the copy, and a copy where nothing changed
stages nothing.

Temporary tables live in SQLite's temp database: never in the catalog file,
gone when the connection closes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from .backends import Entry, EntryKind, WalkProblem
from .backends.interface import NO_DIGESTS
from .catalog import record_version, replace_reference, same_content, transaction
from .listing import BATCH, Listing, create_tables, write_batched

_SCHEMA = """
CREATE TEMP TABLE IF NOT EXISTS updates (
    path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER, ident TEXT,
    verified_at REAL, result TEXT, full_at REAL, evidence TEXT,
    ref_version INTEGER) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS made (
    path BLOB PRIMARY KEY, size INTEGER, digests TEXT NOT NULL) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS fresh (
    path BLOB NOT NULL, size INTEGER NOT NULL, digests TEXT NOT NULL, mtime_ns INTEGER,
    ident TEXT);
CREATE TEMP TABLE IF NOT EXISTS learnt (
    path BLOB PRIMARY KEY, size INTEGER NOT NULL, digests TEXT NOT NULL,
    ref_version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS gone (path BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS untrusted (path BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS later (
    path BLOB NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER, ident TEXT,
    digests TEXT, ref_size INTEGER, ref_digests TEXT NOT NULL,
    ref_version INTEGER NOT NULL, before_result TEXT, before_full_at REAL,
    trusted INTEGER NOT NULL, force INTEGER NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS storage (
    ident TEXT NOT NULL, copy INTEGER NOT NULL, PRIMARY KEY (ident, copy)) WITHOUT ROWID
"""

#: Per copy: emptied when its audit begins.
_PER_COPY = ("updates", "made", "fresh", "learnt", "gone", "untrusted", "later")

#: The catalog row ``s`` still vouches for the reference entry ``r``: it verified
#: ok by a full read or a strong server digest, against the current version of
#: that file's reference entry, at the size the reference gives.  The file is
#: trusted when, besides, its listed size, mtime and identity (inode, ETag) are
#: those of the row (copymerge.py).  Rows from another storage never get here
#: (a storage change replaces a copy's rows).  One definition for the merge and
#: for the fixity schedule.
CATALOG_VOUCHES = ("(s.result = 'ok' AND s.evidence IN ('full', 'digest') "
                   "AND s.ref_version = r.version AND s.verified_at IS NOT NULL "
                   "AND (r.size IS NULL OR r.size = s.size))")

#: When a copy row's bytes were last read and matched, as far as the clock at
#: ``:now`` can tell: a time later than now is no time at all.  A clock that was
#: ahead when the file was read (or is behind now) must not make the file look
#: freshly verified, nor put it last in the fixity schedule for years.
FULL_READ = "(CASE WHEN s.full_at <= :now THEN s.full_at END)"

#: A staged outcome: path, size, mtime, ident, checked at, result (ok | corrupt |
#: unreadable), last full read that matched (None if none is known), evidence
#: (full | digest), reference version compared against (None: the version just
#: given by the reference made from this copy).
Outcome = tuple[str, int, int | None, str | None, float, str, float | None, str | None,
                int | None]


class PresentRow(NamedTuple):
    """A listed file that the reference expects, with what the catalog knows."""

    entry: Entry
    ref_size: int | None
    ref_digests: str  # JSON, decoded only for files that get hashed
    ref_version: int
    before_result: str | None
    #: When its bytes were last read and matched (None: never, as far as we know).
    before_full_at: float | None
    #: Unchanged since it last verified ok against this reference version: cached.
    trusted: bool


class Workset:
    def __init__(self, db: sqlite3.Connection, shared: bool = False) -> None:
        self.db = db
        #: Other connections write the catalog meanwhile (audit --parallel):
        #: no write transaction may stay open while files are read.
        self.shared = shared
        create_tables(db)
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)

    def _batched(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        write_batched(self.db, sql, rows)

    # -- one copy -------------------------------------------------------------------
    def begin_copy(self, walk: Iterable[Entry | WalkProblem], exclude: Sequence[str],
                   sorted_walk: bool, in_table: bool, single_pass: bool = False) -> Listing:
        """Forget what the previous copy staged; walk this one (see listing.py)."""
        with transaction(self.db, "DEFERRED"):
            for table in _PER_COPY:
                self.db.execute(f"DELETE FROM temp.{table}")
            self.db.execute("DROP INDEX IF EXISTS temp.fresh_path")
        return Listing(self.db, walk, exclude, sorted_walk, in_table, single_pass)

    @contextmanager
    def fresh_reference(self, dataset: str, copy: str, audited_at: float
                        ) -> Iterator[FreshReference]:
        """A reference made from the copy ``copy`` (see FreshReference): what it
        wrote is undone unless committed."""
        fresh = FreshReference(self, dataset, copy, audited_at)
        try:
            yield fresh
        finally:
            fresh.close()

    def reference_count(self, dataset: str) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM reference_files WHERE dataset=?",
                                   (dataset,)).fetchone()[0])

    def trusted_oldest_first(self, dataset: str, copy: str, now: float
                             ) -> Iterator[PresentRow]:
        """The files the merge trusted (copymerge.py), by their last full read,
        never-read files first (the fixity schedule): the copy's rows the catalog
        vouches for, less those staged as not trusted tonight.  A last full read
        dated after ``now`` is none (see ``FULL_READ``)."""
        for (path, size, mtime, ident, ref_size, digests, version, result,
             full_at) in self.db.execute(
                f"SELECT s.path, s.size, s.mtime_ns, s.ident, r.size, r.digests, r.version, "
                f"s.result, {FULL_READ} AS full_read FROM copy_files s JOIN reference_files r "
                f"ON r.dataset = :dataset AND r.path = s.path "
                f"WHERE s.copy = :copy AND {CATALOG_VOUCHES} AND NOT EXISTS "
                f"(SELECT 1 FROM temp.untrusted u WHERE u.path = s.path) "
                f"ORDER BY full_read, s.path", {"dataset": dataset, "copy": copy, "now": now}):
            yield PresentRow(Entry(os.fsdecode(path), EntryKind.FILE, size, mtime, ident),
                             ref_size, digests, version, result, full_at, True)

    def read_after(self, copy: str, now: float) -> int:
        """How many of ``copy``'s files the catalog says were last read in full
        at a time later than ``now`` (the clock was ahead then, or is behind)."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM copy_files WHERE copy = ? AND full_at > ?",
            (copy, now)).fetchone()[0])

    # -- files hashed later (another set of algorithms, or read after all) ---------------
    def defer(self, rows: Iterable[tuple[PresentRow, bool]]) -> None:
        """Stage (row, read its bytes whatever the server offers) to hash after
        the files being hashed now."""
        self._batched(
            "INSERT INTO temp.later VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((os.fsencode(r.entry.path), r.entry.size, r.entry.mtime_ns, r.entry.ident,
              json.dumps(dict(r.entry.digests), sort_keys=True) if r.entry.digests else None,
              r.ref_size, r.ref_digests, r.ref_version, r.before_result, r.before_full_at,
              int(r.trusted), int(force)) for r, force in rows))

    def deferred(self, size: int) -> Iterator[list[tuple[PresentRow, bool]]]:
        """What ``defer`` staged, in the order staged, ``size`` rows at a time (read
        a page at a time, so that rows may be deferred again meanwhile), each
        taken off the table as it is handed out."""
        while True:
            page = self.db.execute(
                "SELECT rowid, path, size, mtime_ns, ident, digests, ref_size, ref_digests, "
                "ref_version, before_result, before_full_at, trusted, force FROM temp.later "
                "ORDER BY rowid LIMIT ?", (size,)).fetchall()
            if not page:
                return
            with transaction(self.db, "DEFERRED"):
                self.db.execute("DELETE FROM temp.later WHERE rowid <= ?", (page[-1][0],))
            yield [(PresentRow(Entry(os.fsdecode(path), EntryKind.FILE, size_, mtime, ident,
                                     json.loads(digests) if digests else NO_DIGESTS),
                               ref_size, ref_digests, version, result, full_at,
                               bool(trusted)), bool(force))
                   for (_rowid, path, size_, mtime, ident, digests, ref_size, ref_digests,
                        version, result, full_at, trusted, force) in page]

    # -- hard links: copies that are the same storage file by file ------------------
    def reset_storage(self) -> None:
        self.db.execute("DELETE FROM temp.storage")

    def note_storage(self, copy: int, listing: Listing) -> tuple[int, list[tuple[int, int]]]:
        """Note the storage identities (device and inode) of the listed files
        that have more than one name as belonging to copy number ``copy`` of the
        dataset.  Return how many files the copy lists and, per copy noted before
        that shares some of them, (that copy, files shared).  Only files with
        several names can be shared: a listing without any costs nothing and
        returns (0, [])."""
        if not listing.linked:
            return 0, []
        shared = self.db.execute(
            "SELECT s.copy, COUNT(*) FROM temp.linked l JOIN temp.storage s "
            "ON s.ident = l.ident GROUP BY s.copy ORDER BY s.copy").fetchall()
        with transaction(self.db, "DEFERRED"):
            self.db.execute("INSERT OR IGNORE INTO temp.storage SELECT ident, ? "
                            "FROM temp.linked ORDER BY ident", (copy,))
        return listing.files, [(int(earlier), int(count)) for earlier, count in shared]

    # -- results ----------------------------------------------------------------
    def record(self, rows: Iterable[Outcome]) -> None:
        """Stage per-file outcomes (see ``Outcome``)."""
        self._batched("INSERT OR REPLACE INTO temp.updates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      ((os.fsencode(p), *rest) for p, *rest in rows))

    def record_made(self, rows: Iterable[tuple[str, int | None, str]]) -> None:
        """Stage reference rows (path, size or None, digests JSON) for a new reference."""
        self._batched("INSERT OR REPLACE INTO temp.made VALUES (?, ?, ?)",
                      ((os.fsencode(p), size, digests) for p, size, digests in rows))

    def clear_made(self) -> None:
        self.db.execute("DELETE FROM temp.made")

    def keep_reference_rows(self, dataset: str) -> None:
        """Stage the current reference's entries for every path not staged yet
        (recorded entries stay as they are)."""
        with transaction(self.db, "DEFERRED"):
            self.db.execute("INSERT OR IGNORE INTO temp.made SELECT path, size, digests "
                            "FROM reference_files WHERE dataset = ?", (dataset,))

    def unstaged_files(self) -> Iterator[Entry]:
        """Listed regular files no staged reference row names.  Read a page at a
        time (the caller stages rows in between: no cursor stays open)."""
        after = b""
        while True:
            page = self.db.execute(
                "SELECT l.path, l.size, l.mtime_ns, l.ident FROM temp.listing l "
                "WHERE l.kind = 0 AND l.path > ? AND NOT EXISTS (SELECT 1 FROM temp.made m "
                "WHERE m.path = l.path) ORDER BY l.path LIMIT ?", (after, BATCH)).fetchall()
            if not page:
                return
            for path, size, mtime, ident in page:
                yield Entry(os.fsdecode(path), EntryKind.FILE, size, mtime, ident)
            after = page[-1][0]

    def record_learnt(self, rows: Iterable[tuple[str, int, str, int]]) -> None:
        """Stage sizes and extra digests learnt by reading content that matched
        the reference (path, size, digests JSON, reference version matched)."""
        self._batched("INSERT OR REPLACE INTO temp.learnt VALUES (?, ?, ?, ?)",
                      ((os.fsencode(p), size, digests, version)
                       for p, size, digests, version in rows))

    # -- committing (each in one catalog transaction) --------------------------
    def commit_copy(self, copy: str, dataset: str, state: str, audited_at: float,
                    identity: Mapping[str, str] | None, replace: bool = False) -> None:
        """Write the staged outcomes of ``copy``; forget files no longer listed;
        merge what was learnt into the reference."""
        with transaction(self.db):
            self._write_copy(copy, dataset, state, audited_at, identity, replace)

    def _write_copy(self, copy: str, dataset: str, state: str, audited_at: float,
                    identity: Mapping[str, str] | None, replace: bool) -> None:
        if replace:
            self.db.execute("DELETE FROM copy_files WHERE copy = ?", (copy,))
        else:
            # Files no longer listed (copymerge.py staged them).
            self.db.execute("DELETE FROM copy_files WHERE copy = ? AND path IN "
                            "(SELECT path FROM temp.gone)", (copy,))
        self.db.execute(
            "INSERT OR REPLACE INTO copy_files (copy, path, size, mtime_ns, ident, "
            "verified_at, result, full_at, evidence, ref_version) "
            "SELECT ?, u.path, u.size, u.mtime_ns, u.ident, u.verified_at, u.result, "
            "u.full_at, u.evidence, COALESCE(u.ref_version, (SELECT r.version FROM "
            "reference_files r WHERE r.dataset = ? AND r.path = u.path)) "
            "FROM temp.updates u", (copy, dataset))
        # Learnt only from content that matched the entry as it still is.
        self.db.execute(
            "UPDATE reference_files SET size = COALESCE(reference_files.size, l.size), "
            "digests = json_patch(l.digests, reference_files.digests) "
            "FROM temp.learnt l WHERE reference_files.dataset = ? "
            "AND reference_files.path = l.path AND reference_files.version = l.ref_version",
            (dataset,))
        self.db.execute(
            "INSERT INTO copies (copy, dataset, last_audit_at, last_state, storage_identity) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (copy) DO UPDATE SET "
            "dataset = excluded.dataset, last_audit_at = excluded.last_audit_at, "
            "last_state = excluded.last_state, "
            "storage_identity = COALESCE(excluded.storage_identity, copies.storage_identity)",
            (copy, dataset, audited_at, state,
             json.dumps(dict(identity), sort_keys=True) if identity is not None else None))

    def commit_made_reference(self, dataset: str, source: str, recorded_at: str,
                              user: str) -> bool:
        """Make the staged rows the dataset's reference, as its next version, if
        they differ from the current one at all; True when they did."""
        self.db.create_function("same_content", 4, same_content, deterministic=True)
        with transaction(self.db):
            changed = self.db.execute(
                "SELECT EXISTS (SELECT 1 FROM temp.made m WHERE NOT EXISTS (SELECT 1 FROM "
                "reference_files r WHERE r.dataset = ? AND r.path = m.path AND "
                "same_content(r.size, r.digests, m.size, m.digests))) OR EXISTS (SELECT 1 "
                "FROM reference_files r WHERE r.dataset = ? AND NOT EXISTS (SELECT 1 FROM "
                "temp.made m WHERE m.path = r.path)) OR NOT EXISTS (SELECT 1 FROM datasets "
                "WHERE name = ? AND reference_source = ?)",
                (dataset, dataset, dataset, source)).fetchone()[0]
            if changed:
                replace_reference(self.db, dataset, source, recorded_at, user, "temp.made")
        return bool(changed)


#: A file read from the primary for a reference made from it: (path as bytes,
#: size, digests JSON, mtime_ns, ident).
FreshRow = tuple[bytes, int, str, "int | None", "str | None"]


class FreshReference:
    """A reference made from the primary, one file at a time as it is read;
    each file is also the primary's own catalog row (read in full, intact).

    A dataset the catalog knows nothing of yet (its first audit, the common
    case of a large first run) is written straight into the catalog's tables
    as the files are read, in one transaction that stays open until
    ``commit``: the writes overlap the reading, nothing is written twice, and
    a failed or interrupted audit leaves the catalog as it was (``close``
    rolls back).  A dataset with a reference (``accept``, a reference whose
    files all went) is staged in a temporary table and merged with its
    current reference at the end (``replace_reference``), keeping what other
    copies verified of unchanged files; so is a new one while other workers
    write the catalog (``audit --parallel``: they would wait on the open
    transaction for as long as the primary takes to read)."""

    def __init__(self, workset: Workset, dataset: str, copy: str, audited_at: float) -> None:
        self.workset = workset
        self.db = db = workset.db
        self.dataset = dataset
        self.copy = copy
        self.audited_at = audited_at
        self._open = False  # a catalog transaction of ours is open
        row = db.execute("SELECT reference_version FROM datasets WHERE name = ?",
                         (dataset,)).fetchone()
        self.version = (row[0] if row else 0) + 1
        known = db.execute(
            "SELECT EXISTS (SELECT 1 FROM reference_files WHERE dataset = ?) OR EXISTS "
            "(SELECT 1 FROM copy_files WHERE copy IN (SELECT copy FROM copies WHERE "
            "dataset = ?) OR copy = ?)", (dataset, dataset, copy)).fetchone()[0]
        # Straight into the tables only when no other worker writes meanwhile:
        # the transaction stays open while the whole primary is read (hours).
        self.direct = not known and not workset.shared
        if self.direct:
            db.execute("BEGIN IMMEDIATE")
            self._open = True

    def add(self, rows: Sequence[FreshRow]) -> None:
        """Files read in full (in the order workers finish them)."""
        if not rows:
            return
        db = self.db
        if not self.direct:
            with transaction(db, "DEFERRED"):
                db.executemany("INSERT INTO temp.fresh VALUES (?, ?, ?, ?, ?)", rows)
            return
        dataset, version, copy, now = self.dataset, self.version, self.copy, self.audited_at
        # OR REPLACE: a walk that named a path twice keeps its last reading, as
        # the staged way does.
        db.executemany("INSERT OR REPLACE INTO reference_files (dataset, path, size, digests, "
                       "version) VALUES (?, ?, ?, ?, ?)",
                       [(dataset, path, size, digests, version)
                        for path, size, digests, _mtime, _ident in rows])
        db.executemany("INSERT OR REPLACE INTO copy_files (copy, path, size, mtime_ns, ident, "
                       "verified_at, result, full_at, evidence, ref_version) "
                       "VALUES (?, ?, ?, ?, ?, ?, 'ok', ?, 'full', ?)",
                       [(copy, path, size, mtime, ident, now, now, version)
                        for path, size, _digests, mtime, ident in rows])

    def commit(self, source: str, recorded_at: str, user: str, state: str,
               identity: Mapping[str, str] | None) -> None:
        """Make the files added the dataset's next reference version, and the
        copy's rows, in one transaction.  What other copies verified stays
        valid only for files whose content the new version keeps."""
        db, dataset, copy, audited_at = self.db, self.dataset, self.copy, self.audited_at
        if self.direct:
            record_version(db, dataset, self.version, source, recorded_at, user)
            self.workset._write_copy(copy, dataset, state, audited_at, identity,
                                     replace=False)
            db.execute("COMMIT")
            self._open = False
            return
        with transaction(db):
            # Indexed once, now that every row is in: the reference is merged with it.
            db.execute("CREATE INDEX IF NOT EXISTS temp.fresh_path ON fresh (path)")
            replace_reference(db, dataset, source, recorded_at, user, "temp.fresh")
            db.execute("DELETE FROM copy_files WHERE copy = ?", (copy,))
            db.execute(
                "INSERT OR REPLACE INTO copy_files (copy, path, size, mtime_ns, ident, "
                "verified_at, result, full_at, evidence, ref_version) "
                "SELECT ?, f.path, f.size, f.mtime_ns, f.ident, ?, 'ok', ?, 'full', r.version "
                "FROM temp.fresh f JOIN reference_files r ON r.dataset = ? AND r.path = f.path "
                "ORDER BY f.path", (copy, audited_at, audited_at, dataset))
            self.workset._write_copy(copy, dataset, state, audited_at, identity,
                                     replace=False)

    def close(self) -> None:
        """Undo what was written unless committed."""
        if self._open:
            self._open = False
            self.db.execute("ROLLBACK")
