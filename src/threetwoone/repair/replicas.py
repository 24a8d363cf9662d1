"""File-level coverage: how many intact copies each reference file has.

A copy's verdict hides the most urgent fact: two copies each missing a
different half still hold every file once, while one file corrupt on the
primary and absent from the backup is lost.  Counted per file over every copy
of the dataset whose catalog rows this audit wrote (copies that could not be
reached, or that are the same storage as another, do not hold anything here):

- at risk: fewer intact copies than the policy's ``copies``;
- lost: no intact copy at all.

A file is intact on a copy when the copy's catalog row verified ok against the
current version of that file's reference entry (the same test the fixity
schedule trusts).  Every count is one SQL pass over the catalog: memory stays
flat for a dataset of millions of files.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

#: The copy_files row ``f`` holds reference entry ``r`` intact.
INTACT = ("(f.result = 'ok' AND f.ref_version = r.version "
          "AND (r.size IS NULL OR f.size = r.size))")

#: States in which a copy was read this run, so its catalog rows are this
#: run's (an unreachable or missing copy keeps rows from an earlier audit).
READ_STATES = frozenset({"intact", "incomplete", "corrupt", "outdated", "error"})


#: Ends a subquery whose columns the outer query reads several times: a LIMIT
#: keeps SQLite from flattening it into the outer query, which would evaluate
#: each correlated subquery once per use instead of once per file.
ONCE = "LIMIT -1"


@dataclass(frozen=True)
class Coverage:
    files: int
    at_risk: int
    lost: int
    at_risk_bytes: int
    lost_bytes: int


def holders(copies: Iterable[tuple[str, str, bool]]) -> list[str]:
    """The copy keys whose rows count, from (key, state, same storage as an
    earlier copy or sharing its files): read this run, each storage once.  A
    copy sharing files with another through hard links does not hold them a
    second time; it is left out whole (never counts more than it holds)."""
    return list(dict.fromkeys(key for key, state, shared in copies
                              if state in READ_STATES and not shared))


def _in(keys: Sequence[str]) -> str:
    return ",".join("?" * len(keys))


def _size(keys: Sequence[str]) -> str:
    """A file's size: the reference's, else what an intact copy listed (an entry
    known only from a producer manifest and a server digest has no size)."""
    if not keys:
        return "COALESCE(r.size, 0)"
    return (f"COALESCE(r.size, (SELECT MAX(f.size) FROM copy_files f WHERE f.path = r.path "
            f"AND f.copy IN ({_in(keys)}) AND {INTACT}), 0)")


def coverage(db: sqlite3.Connection, dataset: str, keys: Sequence[str], needed: int
             ) -> Coverage:
    """Files of ``dataset``'s reference with fewer than ``needed`` intact
    copies among ``keys``, and with none."""
    keys = list(keys)
    intact = (f"(SELECT COUNT(*) FROM copy_files f WHERE f.copy IN ({_in(keys)}) "
              f"AND f.path = r.path AND {INTACT})") if keys else "0"
    row = db.execute(
        f"SELECT COUNT(*), COALESCE(SUM(n < ?), 0), COALESCE(SUM(n = 0), 0), "
        f"COALESCE(SUM(CASE WHEN n < ? THEN size END), 0), "
        f"COALESCE(SUM(CASE WHEN n = 0 THEN size END), 0) "
        f"FROM (SELECT {intact} AS n, {_size(keys)} AS size "
        f"FROM reference_files r WHERE r.dataset = ? {ONCE})",
        (needed, needed, *keys, *keys, dataset)).fetchone()
    return Coverage(*(int(value) for value in row))


@dataclass(frozen=True)
class Share:
    """Files a target copy lacks that one source (or none) supplies best."""

    #: Index into the ranked sources, or None: no intact copy anywhere (lost).
    source: int | None
    files: int
    bytes: int


def _best_source(sources: Sequence[str]) -> str:
    """The rank of the best-ranked source holding the file intact, or NULL."""
    if not sources:
        return "NULL"
    ranks = " ".join(f"WHEN ? THEN {rank}" for rank in range(len(sources)))
    return (f"(SELECT MIN(CASE f.copy {ranks} END) FROM copy_files f "
            f"WHERE f.copy IN ({_in(sources)}) AND f.path = r.path AND {INTACT})")


def _lacking(target: str | None) -> str:
    if target is None:
        return ""
    return (f"AND NOT EXISTS (SELECT 1 FROM copy_files f WHERE f.copy = ? "
            f"AND f.path = r.path AND {INTACT})")


def shares(db: sqlite3.Connection, dataset: str, target: str | None,
           sources: Sequence[str], holders: Sequence[str]) -> list[Share]:
    """The reference files ``target`` does not hold intact (every file when
    ``target`` is None: a copy to make from nothing), grouped by the first of
    the ranked ``sources`` that holds each intact."""
    sources = list(sources)
    args: list[object] = [*sources, *sources, *holders, dataset]
    if target is not None:
        args.append(target)
    rows = db.execute(
        f"SELECT best, COUNT(*), COALESCE(SUM(size), 0) FROM "
        f"(SELECT {_best_source(sources)} AS best, {_size(holders)} AS size "
        f"FROM reference_files r WHERE r.dataset = ? {_lacking(target)} {ONCE}) "
        f"GROUP BY best ORDER BY best IS NULL, best", args).fetchall()
    return [Share(None if best is None else int(best), int(count), int(size))
            for best, count, size in rows]


def paths(db: sqlite3.Connection, dataset: str, target: str | None,
          sources: Sequence[str], source: int | None) -> Iterator[str]:
    """The paths of one share (see ``shares``), in order, read a page at a time."""
    sources = list(sources)
    wanted = "best IS NULL" if source is None else "best = ?"
    after = b""
    while True:
        args: list[object] = [*sources, *sources, dataset]
        if target is not None:
            args.append(target)
        args.append(after)
        if source is not None:
            args.append(source)
        page = db.execute(
            f"SELECT path FROM (SELECT r.path AS path, {_best_source(sources)} AS best "
            f"FROM reference_files r WHERE r.dataset = ? {_lacking(target)} AND r.path > ?) "
            f"WHERE {wanted} ORDER BY path LIMIT 5000", args).fetchall()
        if not page:
            return
        for (path,) in page:
            yield os.fsdecode(path)
        after = page[-1][0]
