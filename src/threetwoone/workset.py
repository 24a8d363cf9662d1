"""The listing of the copy being audited, as temporary tables next to the catalog.

A copy may hold millions of files.  Holding its listing, its reference and its
catalog rows as Python dicts costs about a kilobyte a file; instead the listing
streams into a temporary SQLite table and every comparison is a join, read back
through cursors in the order the auditor needs.  Memory stays flat (SQLite's
page cache and one chunk of files being hashed), whatever the size of the copy.

Temporary tables live in SQLite's temp database: never in the catalog file,
gone when the connection closes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from .backends import Entry, EntryKind
from .catalog import replace_reference, same_content, transaction

KIND_CODES = {EntryKind.FILE: 0, EntryKind.SYMLINK: 1, EntryKind.SPECIAL: 2}
CODE_KINDS = {code: kind for kind, code in KIND_CODES.items()}

#: Rows per executemany: large enough to amortise the call, small enough to stream.
BATCH = 5000

_SCHEMA = """
CREATE TEMP TABLE IF NOT EXISTS listing (
    path BLOB PRIMARY KEY, kind INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER, ident TEXT, digests TEXT, links INTEGER) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS updates (
    path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER, ident TEXT,
    verified_at REAL, result TEXT, full_at REAL, evidence TEXT,
    ref_version INTEGER) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS made (
    path BLOB PRIMARY KEY, size INTEGER, digests TEXT NOT NULL) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS learnt (
    path BLOB PRIMARY KEY, size INTEGER NOT NULL, digests TEXT NOT NULL,
    ref_version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS storage (
    ident TEXT NOT NULL, copy INTEGER NOT NULL, PRIMARY KEY (ident, copy)) WITHOUT ROWID
"""

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
    before_verified_at: float | None
    before_result: str | None
    #: When its bytes were last read and matched (None: never, as far as we know).
    before_full_at: float | None
    #: Unchanged since it last verified ok against this reference version: cached.
    trusted: bool


class Workset:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        #: Whether some listed entry came with server digests (see ``with_listed_digests``).
        self._listed_digests = False
        #: Whether some listed file has more than one name (see ``note_storage``).
        self._linked = False

    def _batched(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        batch: list[tuple[object, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                self._write(sql, batch)
                batch = []
        if batch:
            self._write(sql, batch)

    def _write(self, sql: str, batch: list[tuple[object, ...]]) -> None:
        with transaction(self.db, "DEFERRED"):
            self.db.executemany(sql, batch)

    # -- the listing ------------------------------------------------------------
    def reset(self) -> None:
        self.db.execute("DELETE FROM temp.listing")
        self.db.execute("DELETE FROM temp.updates")
        self.db.execute("DELETE FROM temp.made")
        self.db.execute("DELETE FROM temp.learnt")
        self._listed_digests = False
        self._linked = False

    def add_listing(self, entries: Iterable[Entry]) -> None:
        # Hot loop (once per file): identity checks instead of hashing enums, and
        # str.encode instead of os.fsencode's extra call.
        encoding = sys.getfilesystemencoding()
        file_kind, symlink_kind = EntryKind.FILE, EntryKind.SYMLINK
        self._batched("INSERT OR REPLACE INTO temp.listing VALUES (?, ?, ?, ?, ?, ?, ?)",
                      ((e.path.encode(encoding, "surrogateescape"),
                        0 if e.kind is file_kind else 1 if e.kind is symlink_kind else 2,
                        e.size, e.mtime_ns, e.ident,
                        self._digests_column(e.digests) if e.digests else None,
                        self._links_column(e.links) if e.links > 1 else None)
                       for e in entries))

    def _links_column(self, links: int) -> int:
        self._linked = True
        return links

    def _digests_column(self, digests: Mapping[str, str]) -> str:
        self._listed_digests = True
        return json.dumps(dict(digests), sort_keys=True)

    def with_listed_digests(self, entries: Sequence[Entry]) -> list[Entry]:
        """``entries`` with the server digests their listing carried (dCache's
        Checksums property in a PROPFIND answer), which the rows read back from
        the listing table leave out: the backend then needs no request per file
        to learn them.  Free when the listing carried none."""
        if not self._listed_digests:
            return list(entries)
        found: dict[bytes, str] = {}
        paths = [os.fsencode(e.path) for e in entries]
        for start in range(0, len(paths), 500):  # SQLite's bound on ? parameters
            part = paths[start:start + 500]
            found.update(self.db.execute(
                f"SELECT path, digests FROM temp.listing WHERE digests IS NOT NULL "
                f"AND path IN ({','.join('?' * len(part))})", part).fetchall())
        return [e._replace(digests=json.loads(found[path])) if path in found else e
                for e, path in zip(entries, paths, strict=True)]

    def listed_files(self) -> tuple[int, int]:
        """(files, bytes) of regular files listed."""
        count, size = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM temp.listing WHERE kind=0"
        ).fetchone()
        return int(count), int(size)

    def files(self) -> Iterator[Entry]:
        for path, size, mtime, ident in self.db.execute(
                "SELECT path, size, mtime_ns, ident FROM temp.listing WHERE kind=0 "
                "ORDER BY path"):
            yield Entry(os.fsdecode(path), EntryKind.FILE, size, mtime, ident)

    def others(self) -> Iterator[Entry]:
        """Symlinks and special files."""
        for path, kind in self.db.execute(
                "SELECT path, kind FROM temp.listing WHERE kind != 0 ORDER BY path"):
            yield Entry(os.fsdecode(path), CODE_KINDS[kind])

    # -- joins with the reference and the catalog ---------------------------------
    def reference_count(self, dataset: str) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM reference_files WHERE dataset=?",
                                   (dataset,)).fetchone()[0])

    def missing(self, dataset: str) -> Iterator[tuple[str, EntryKind | None]]:
        """Reference files not listed as regular files (with what is there instead)."""
        for path, kind in self.db.execute(
                "SELECT r.path, l.kind FROM reference_files r "
                "LEFT JOIN temp.listing l ON l.path = r.path "
                "WHERE r.dataset = ? AND (l.path IS NULL OR l.kind != 0) ORDER BY r.path",
                (dataset,)):
            yield os.fsdecode(path), (CODE_KINDS[kind] if kind is not None else None)

    def extras(self, dataset: str) -> Iterator[Entry]:
        """Listed entries the reference does not name."""
        for path, kind in self.db.execute(
                "SELECT l.path, l.kind FROM temp.listing l WHERE NOT EXISTS "
                "(SELECT 1 FROM reference_files r WHERE r.dataset = ? AND r.path = l.path) "
                "ORDER BY l.path", (dataset,)):
            yield Entry(os.fsdecode(path), CODE_KINDS[kind])

    #: A catalog row ``s`` still vouches for the listed file ``l`` against the
    #: reference entry ``r``: it verified ok by a full read or a strong server
    #: digest, against the current version of that file's reference entry, and
    #: size, mtime and identity (inode, ETag) have not moved since.  Rows from
    #: another storage never get here (a storage change replaces a copy's rows).
    _TRUSTED = ("(s.result = 'ok' AND s.evidence IN ('full', 'digest') "
                "AND s.ref_version = r.version AND s.verified_at IS NOT NULL "
                "AND s.size = l.size AND (r.size IS NULL OR r.size = l.size) "
                "AND s.mtime_ns IS l.mtime_ns AND s.ident IS l.ident)")

    def present(self, dataset: str, copy: str, trusted: bool | None = None,
                oldest_first: bool = False) -> Iterator[PresentRow]:
        """Listed files the reference expects; ``trusted`` filters on whether the
        catalog still vouches for them; ``oldest_first`` orders by the last full
        read, never-read files first (the fixity schedule)."""
        where = ""
        if trusted is not None:
            where = f"AND {'' if trusted else 'NOT '}COALESCE({self._TRUSTED}, 0) "
        order = "ORDER BY s.full_at, l.path" if oldest_first else ""
        sql = (f"SELECT l.path, l.size, l.mtime_ns, l.ident, r.size, r.digests, r.version, "
               f"s.verified_at, s.result, s.full_at, COALESCE({self._TRUSTED}, 0) "
               f"FROM temp.listing l JOIN reference_files r "
               f"ON r.dataset = ? AND r.path = l.path "
               f"LEFT JOIN copy_files s ON s.copy = ? AND s.path = l.path "
               f"WHERE l.kind = 0 {where}{order}")
        for (path, size, mtime, ident, ref_size, digests, version, verified_at, result,
             full_at, is_trusted) in self.db.execute(sql, (dataset, copy)):
            yield PresentRow(Entry(os.fsdecode(path), EntryKind.FILE, size, mtime, ident),
                             ref_size, digests, version, verified_at, result, full_at,
                             bool(is_trusted))

    def trusted_totals(self, dataset: str, copy: str) -> tuple[int, int, float | None]:
        """(files, bytes, oldest full read) of trusted files; the oldest is None
        when one of them was never read in full."""
        count, size, oldest = self.db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(l.size), 0), "
            f"CASE WHEN COUNT(s.full_at) < COUNT(*) THEN NULL ELSE MIN(s.full_at) END "
            f"FROM temp.listing l JOIN reference_files r ON r.dataset = ? AND r.path = l.path "
            f"JOIN copy_files s ON s.copy = ? AND s.path = l.path "
            f"WHERE l.kind = 0 AND {self._TRUSTED}", (dataset, copy)).fetchone()
        return int(count), int(size), oldest

    # -- hard links: copies that are the same storage file by file ------------------
    def reset_storage(self) -> None:
        self.db.execute("DELETE FROM temp.storage")

    def note_storage(self, copy: int) -> tuple[int, list[tuple[int, int]]]:
        """Note the storage identities (device and inode) of the listed files
        that have more than one name as belonging to copy number ``copy`` of the
        dataset.  Return how many files the copy lists and, per copy noted before
        that shares some of them, (that copy, files shared).  Only files with
        several names can be shared: a listing without any costs nothing and
        returns (0, [])."""
        if not self._linked:
            return 0, []
        listed = self.listed_files()[0]
        shared = self.db.execute(
            "SELECT s.copy, COUNT(*) FROM temp.listing l JOIN temp.storage s "
            "ON s.ident = l.ident WHERE l.kind = 0 AND l.links IS NOT NULL "
            "GROUP BY s.copy ORDER BY s.copy").fetchall()
        with transaction(self.db, "DEFERRED"):
            self.db.execute("INSERT OR IGNORE INTO temp.storage SELECT ident, ? "
                            "FROM temp.listing WHERE kind = 0 AND links IS NOT NULL "
                            "AND ident IS NOT NULL ORDER BY ident", (copy,))
        return listed, [(int(earlier), int(count)) for earlier, count in shared]

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
            self.db.execute(
                "DELETE FROM copy_files WHERE copy = ? AND path NOT IN "
                "(SELECT path FROM temp.listing WHERE kind = 0)", (copy,))
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

    def commit_reference(self, dataset: str, source: str, recorded_at: str, user: str,
                         copy: str, state: str, audited_at: float,
                         identity: Mapping[str, str] | None) -> None:
        """Make the staged ``made`` rows the dataset's next reference version and
        write the copy it was made from, in one transaction.  What other copies
        verified stays valid only for files whose content the new version keeps."""
        with transaction(self.db):
            replace_reference(self.db, dataset, source, recorded_at, user, "temp.made")
            self._write_copy(copy, dataset, state, audited_at, identity, replace=True)
