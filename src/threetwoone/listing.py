"""One walk of a copy: its entries in the byte order of their paths.

The auditor compares a listing with the catalog's rows by merging the two
sorted streams (copymerge.py), so the listing is read back sorted by the bytes
of its paths (``os.fsencode``, as the catalog stores them).  The walk is done
once, before any file is read (a file that changes between the two is caught
by the read, see localhash.py), and kept:

* in memory, up to ``IN_MEMORY`` entries: a copy of a few ten thousand files
  costs no SQLite write at all; a backend whose walk is not sorted
  (``Backend.sorted_walk``) is sorted here;
* beyond that, in a temporary SQLite table, sorted by SQLite: memory stays
  flat however many files a copy holds.  A sorted walk keeps its first
  ``IN_MEMORY`` entries in memory and writes only the rest.

Listings that are read in ways a list cannot answer (producer manifests and
bags: "the listed files no staged reference row names") go to the table whole.

A primary whose content becomes the reference (a first audit, ``accept``) may
instead be read as it is walked, once (``single_pass``): its files go to the
hashing workers as the walk finds them, nothing is kept, and each file is still
checked at open against what the walk saw of it.

The walk's problems (folders that could not be listed), the totals of regular
files and the files with several names (for the hard-link check between
copies) are gathered on the way.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence

from .backends import Entry, EntryKind, WalkProblem
from .backends.interface import NO_DIGESTS
from .catalog import transaction

KIND_CODES = {EntryKind.FILE: 0, EntryKind.SYMLINK: 1, EntryKind.SPECIAL: 2}
CODE_KINDS = {code: kind for kind, code in KIND_CODES.items()}

#: Rows per executemany: large enough to amortise the call, small enough to stream.
BATCH = 5000

#: How paths are turned into the bytes the catalog keeps and sorts by.
ENCODING = sys.getfilesystemencoding()

_SCHEMA = """
CREATE TEMP TABLE IF NOT EXISTS listing (
    path BLOB PRIMARY KEY, kind INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER, ident TEXT, digests TEXT) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS linked (ident TEXT NOT NULL)
"""


def create_tables(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def write_batched(db: sqlite3.Connection, sql: str, rows: Iterable[tuple[object, ...]]
                  ) -> None:
    """``executemany`` in batches of BATCH rows, each in a transaction of its own
    (temporary tables only: nothing in the catalog moves)."""
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            _write(db, sql, batch)
            batch = []
    if batch:
        _write(db, sql, batch)


def _write(db: sqlite3.Connection, sql: str, batch: Sequence[tuple[object, ...]]) -> None:
    if db.in_transaction:
        # A single-pass listing read while the reference is written (one open
        # transaction, see workset.FreshReference): its rows are part of it.
        db.executemany(sql, batch)
        return
    with transaction(db, "DEFERRED"):
        db.executemany(sql, batch)


#: Entries a listing keeps in memory (a few hundred bytes each) before it
#: writes to its temporary table.
IN_MEMORY = 100_000


class Listing:
    """The entries of one copy, sorted by the bytes of their paths."""

    def __init__(self, db: sqlite3.Connection, walk: Iterable[Entry | WalkProblem],
                 exclude: Sequence[str], sorted_walk: bool, in_table: bool,
                 single_pass: bool = False) -> None:
        self.db = db
        #: Walked as it is read, once (see ``keyed``); None once that began.
        self._stream: Iterator[Entry] | None = None
        self.single_pass = single_pass and sorted_walk and not in_table
        #: Folders (or entries) that could not be listed, in walk order.
        self.problems: list[WalkProblem] = []
        #: Regular files listed and their bytes.
        self.files = 0
        self.bytes = 0
        #: Files with more than one name were listed (see the ``linked`` table).
        self.linked = False
        #: The first entries, in order (all of them unless ``in_table`` or more
        #: than IN_MEMORY); the rest are in the table ``listing``.
        self._memory: list[Entry] = []
        #: Some entries are in the table.
        self.tabled = False
        db.execute("DELETE FROM temp.linked")
        db.execute("DELETE FROM temp.listing")
        entries = self._filtered(walk, exclude)
        if self.single_pass:
            self._stream = entries
            return
        if not in_table:
            memory = self._memory
            for entry in entries:
                memory.append(entry)
                if len(memory) >= IN_MEMORY:
                    break
            else:
                if not sorted_walk:
                    self._sort_memory()
                return
            if not sorted_walk:  # the table sorts them all
                entries = itertools.chain(memory, entries)
                self._memory = []
        self.tabled = True
        write_batched(db, "INSERT OR REPLACE INTO temp.listing VALUES (?, ?, ?, ?, ?, ?)",
                      ((e.path.encode(ENCODING, "surrogateescape"), KIND_CODES[e.kind],
                        e.size, e.mtime_ns, e.ident,
                        json.dumps(dict(e.digests), sort_keys=True) if e.digests else None)
                       for e in entries))
        if not self._memory:
            # A walk may name a path twice (INSERT OR REPLACE kept the last): count
            # what the table holds.
            self.files, self.bytes = (int(n) for n in db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM temp.listing WHERE kind = 0"
            ).fetchone())

    def _sort_memory(self) -> None:
        """Sort what an unsorted walk gave; a path named twice keeps its last
        entry (as the table would)."""
        memory = self._memory
        memory.sort(key=_encoded_path)  # stable: among equal paths, walk order
        kept = [entry for entry, after in zip(memory, [*memory[1:], None], strict=True)
                if after is None or after.path != entry.path]
        if len(kept) != len(memory):
            self._memory = kept
            files = [e for e in kept if e.kind is EntryKind.FILE]
            self.files, self.bytes = len(files), sum(e.size for e in files)

    def _filtered(self, walk: Iterable[Entry | WalkProblem], exclude: Sequence[str]
                  ) -> Iterator[Entry]:
        """The walk without excluded entries; problems, totals and files with
        several names noted on the way."""
        file_kind = EntryKind.FILE
        links: list[tuple[str]] = []
        for item in walk:
            if isinstance(item, WalkProblem):
                self.problems.append(item)
                continue
            if exclude and _excluded(item.path, exclude):
                continue
            if item.kind is file_kind:
                self.files += 1
                self.bytes += item.size
                if item.links > 1 and item.ident is not None:
                    links.append((item.ident,))
                    if len(links) >= BATCH:
                        self._note_links(links)
                        links = []
            yield item
        self._note_links(links)

    def _note_links(self, links: list[tuple[str]]) -> None:
        if links:
            self.linked = True
            _write(self.db, "INSERT INTO temp.linked VALUES (?)", links)

    def keyed(self) -> Iterator[tuple[bytes, Entry]]:
        """(path as the catalog keeps it, entry), in the order of those bytes."""
        if self.single_pass:
            yield from self._walked_now()
            return
        for entry in self._memory:
            yield entry.path.encode(ENCODING, "surrogateescape"), entry
        if not self.tabled:
            return
        for path, kind, size, mtime, ident, digests in self.db.execute(
                "SELECT path, kind, size, mtime_ns, ident, digests FROM temp.listing "
                "ORDER BY path"):
            yield path, Entry(os.fsdecode(path), CODE_KINDS[kind], size, mtime, ident,
                              json.loads(digests) if digests else NO_DIGESTS)

    def _walked_now(self) -> Iterator[tuple[bytes, Entry]]:
        """A single-pass listing: the walk itself, as the caller reads it (a
        first audit's hashing workers start on the first files instead of after
        the last folder, and nothing is kept: memory stays flat).  Its totals,
        problems and files with several names are final once it is exhausted."""
        stream, self._stream = self._stream, None
        if stream is None:
            raise RuntimeError("a single-pass listing is read once")
        for entry in stream:
            yield entry.path.encode(ENCODING, "surrogateescape"), entry

    def entries(self) -> Iterator[Entry]:
        for _key, entry in self.keyed():
            yield entry

    def regular_files(self) -> Iterator[Entry]:
        file_kind = EntryKind.FILE
        for _key, entry in self.keyed():
            if entry.kind is file_kind:
                yield entry


def _encoded_path(entry: Entry) -> bytes:
    return entry.path.encode(ENCODING, "surrogateescape")


def _excluded(path: str, patterns: Iterable[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(name, p) for p in patterns)
