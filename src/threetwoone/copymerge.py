"""A copy's listing compared with the catalog, as one merge of two sorted streams.

The listing comes sorted by the bytes of its paths (listing.py); so do the
dataset's reference entries, each with the copy's catalog row for it when there
is one (one query that walks both tables' primary keys in order).  One pass
tells every path apart:

* in the reference, not listed as a regular file: *missing* (a symlink or a
  special file there is said);
* listed, not in the reference: *extra*;
* listed and in the reference: *present*; *trusted* when the catalog still
  vouches for it (``workset.CATALOG_VOUCHES``) and its size, mtime and identity have
  not moved since; otherwise its content must be established.

Nothing is written for a trusted file, nor kept: a nightly run that finds
nothing changed costs the walk, one read of the catalog's rows, and a few
tallies.  What must change in the catalog is staged for the copy's commit:
rows of files no longer listed (``gone``), and, for the fixity schedule, the
files the catalog vouched for that are not trusted tonight (``untrusted``).
"""

from __future__ import annotations

import math
import os
import sqlite3
from array import array
from collections.abc import Callable, Iterator

from .backends import CopyFailed, Entry, EntryKind
from .listing import Listing, write_batched
from .workset import CATALOG_VOUCHES, FULL_READ, PresentRow

_ROWS = ("SELECT r.path, r.size, r.digests, r.version, s.size, s.mtime_ns, s.ident, "
         f"s.result, {FULL_READ}, COALESCE({CATALOG_VOUCHES}, 0) "
         "FROM reference_files r LEFT JOIN copy_files s ON s.copy = :copy AND s.path = r.path "
         "WHERE r.dataset = :dataset ORDER BY r.path")


class FullReads:
    """When each reference file was last read in full on one copy, as the audit
    leaves the catalog (None: never, or not by a read that matched the current
    reference version): what ``Catalog.copy_status`` would find after the
    commit, gathered on the way so that counting the overdue files costs no
    second pass over the catalog.  Eight bytes a file."""

    def __init__(self) -> None:
        self._values = array("d")
        #: Values replaced since (files of the fixity schedule read again).
        self._replaced = array("d")
        #: Files among them this audit reports missing, corrupt or unreadable
        #: (never read in full by then: overdue at any cutoff).
        self.damaged = 0

    def add(self, when: float | None) -> None:
        self._values.append(math.nan if when is None else when)

    def add_many(self, when: float, count: int) -> None:
        """``count`` files read in full at ``when``."""
        self._values.extend(array("d", (when,)) * count)

    def replace(self, before: float | None, after: float | None) -> None:
        self._replaced.append(math.nan if before is None else before)
        self.add(after)

    def overdue(self, cutoff: float) -> int:
        """Files never read in full, or last read at or before ``cutoff``."""
        return _at_or_before(self._values, cutoff) - _at_or_before(self._replaced, cutoff)


def _at_or_before(values: array[float], cutoff: float) -> int:
    return sum(1 for value in values if not value > cutoff)  # NaN (never) counts


class CopyMerge:
    """Merges one listing with the catalog's rows for one copy of a dataset.

    ``present()`` yields the present files whose content must be established
    (every present file with ``every_present``), while the rest is told to the
    callbacks and tallied; the tallies are final once it is exhausted."""

    def __init__(self, db: sqlite3.Connection, dataset: str, copy: str, listing: Listing,
                 on_missing: Callable[[str, EntryKind | None], None],
                 on_extra: Callable[[Entry], None], *, every_present: bool,
                 note_untrusted: bool, now: float) -> None:
        self.db = db
        self.dataset = dataset
        self.copy = copy
        #: A last full read dated after now counts as none (workset.FULL_READ).
        self.now = now
        self.listing = listing
        self.on_missing = on_missing
        self.on_extra = on_extra
        self.every_present = every_present
        #: Stage the vouched-for files not trusted tonight (the fixity schedule
        #: reads the catalog's rows again, oldest first, and must skip them).
        self.note_untrusted = note_untrusted
        #: Reference entries.
        self.expected = 0
        #: Trusted files, their bytes, the oldest full read among them, and
        #: whether one of them was never read in full.
        self.trusted_files = 0
        self.trusted_bytes = 0
        self.oldest_full_read: float | None = None
        self.never_read = False
        #: The last full read of every reference entry not handed out by
        #: ``present()`` (the hasher adds those it establishes).
        self.full_reads = FullReads()
        self._gone: list[tuple[bytes]] = []
        self._untrusted: list[tuple[bytes]] = []

    def present(self) -> Iterator[PresentRow]:
        rows = self.db.execute(_ROWS, {"copy": self.copy, "dataset": self.dataset,
                                       "now": self.now})
        row = next(rows, None)
        previous = b""
        file_kind = EntryKind.FILE
        every = self.every_present
        for key, entry in self.listing.keyed():
            if key <= previous:
                raise CopyFailed(f"the listing is not in path order ({entry.path!r} after "
                                 f"{previous!r}): cannot compare it with the catalog")
            previous = key
            while row is not None and row[0] < key:
                self.expected += 1
                self._unlisted(row, None)
                row = next(rows, None)
            if row is None or row[0] != key:
                self.on_extra(entry)
                continue
            ref, row = row, next(rows, None)
            self.expected += 1
            if entry.kind is not file_kind:
                self._unlisted(ref, entry.kind)
                continue
            (_path, ref_size, digests, version, size, mtime, ident, result, full_at,
             vouches) = ref
            trusted = (vouches == 1 and size == entry.size and mtime == entry.mtime_ns
                       and ident == entry.ident)
            if trusted:
                self.trusted_files += 1
                self.trusted_bytes += entry.size
                if full_at is None:
                    self.never_read = True
                elif self.oldest_full_read is None or full_at < self.oldest_full_read:
                    self.oldest_full_read = full_at
                if not every:
                    self.full_reads.add(full_at)
                    continue
            elif vouches == 1:
                self._note(self._untrusted, key)
            yield PresentRow(entry, ref_size, digests, version, result, full_at, trusted)
        while row is not None:
            self.expected += 1
            self._unlisted(row, None)
            row = next(rows, None)
        self._flush()

    def _unlisted(self, row: tuple[object, ...], kind: EntryKind | None) -> None:
        """A reference entry not listed as a regular file."""
        self.full_reads.add(None)  # its row, if any, is forgotten
        self.full_reads.damaged += 1  # missing, or below a folder that is unreadable
        path = row[0]
        assert isinstance(path, bytes)
        if row[4] is not None:  # the copy's row: forgotten at commit
            self._note(self._gone, path)
        if row[9] == 1:
            self._note(self._untrusted, path)
        self.on_missing(os.fsdecode(path), kind)

    def _note(self, into: list[tuple[bytes]], path: bytes) -> None:
        if into is self._untrusted and not self.note_untrusted:
            return
        into.append((path,))
        if len(into) >= 5000:
            self._flush()

    def _flush(self) -> None:
        if self._gone:
            write_batched(self.db, "INSERT OR IGNORE INTO temp.gone VALUES (?)", self._gone)
            self._gone = []
        if self._untrusted:
            write_batched(self.db, "INSERT OR IGNORE INTO temp.untrusted VALUES (?)",
                          self._untrusted)
            self._untrusted = []

    @property
    def oldest(self) -> float | None:
        """The oldest full read among the trusted files; None when one of them
        was never read in full (only a server digest vouches for it)."""
        return None if self.never_read else self.oldest_full_read

