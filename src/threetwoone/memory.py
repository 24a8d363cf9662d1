"""What the catalog remembers for collections and coverage.

* Collection members: every collection dataset an audit has audited, with the
  folder it was found at.  A member whose folder has gone fails (``dataset-gone``)
  instead of silently dropping out of the report, until ``threetwoone forget``.
* Uncovered folders: since when each has been seen, so the report can say how
  long data has gone undeclared.

Paths are stored as raw bytes, like every path in the catalog.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from .catalog import transaction


@dataclass(frozen=True)
class Member:
    dataset: str
    collection: str
    location: str
    #: The matched folder below the location's root.
    path: str
    first_seen: str
    last_seen: str


def members(db: sqlite3.Connection) -> dict[str, Member]:
    """Every remembered collection dataset, by name."""
    out = {}
    for dataset, collection, location, path, first, last in db.execute(
            "SELECT dataset, collection, location, path, first_seen, last_seen "
            "FROM collection_members ORDER BY dataset"):
        out[dataset] = Member(dataset, collection, location, os.fsdecode(bytes(path)),
                              first, last)
    return out


def record_members(db: sqlite3.Connection,
                   found: Iterable[tuple[str, str, str, str]], now: str) -> None:
    """Remember ``(dataset, collection, location, path)`` as audited ``now``."""
    with transaction(db):
        db.executemany(
            "INSERT INTO collection_members VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (dataset) DO UPDATE SET collection = excluded.collection, "
            "location = excluded.location, path = excluded.path, "
            "last_seen = excluded.last_seen",
            ((dataset, collection, location, os.fsencode(path), now, now)
             for dataset, collection, location, path in found))


def known_datasets(db: sqlite3.Connection) -> set[str]:
    """Datasets the catalog keeps any state for (a reference, copies, membership)."""
    names: set[str] = set()
    for query in ("SELECT name FROM datasets", "SELECT DISTINCT dataset FROM copies",
                  "SELECT dataset FROM collection_members"):
        names.update(row[0] for row in db.execute(query))
    return names


def last_inventory(db: sqlite3.Connection, dataset: str) -> str | None:
    """The inventory of the latest run that audited ``dataset`` (as recorded:
    absolute since this was added, as given before)."""
    row = db.execute("SELECT r.inventory FROM run_datasets d JOIN runs r ON r.id = d.run_id "
                     "WHERE d.dataset = ? ORDER BY d.run_id DESC LIMIT 1",
                     (dataset,)).fetchone()
    return None if row is None else str(row[0])


#: Tables that are the record of past runs: ``forget`` leaves history alone.
HISTORY_TABLES = {"runs", "run_datasets", "run_copies", "schema_migrations"}


def forget(db: sqlite3.Connection, dataset: str) -> None:
    """Drop everything the catalog keeps about ``dataset`` except the history
    of past runs: its reference, what each copy last verified, its membership.
    Done table by table from the schema, so state added by later migrations
    (keyed by ``dataset`` or by ``copy``) goes too."""
    with transaction(db):
        copies = [row[0] for row in db.execute("SELECT copy FROM copies WHERE dataset = ?",
                                               (dataset,))]
        tables = [row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table in HISTORY_TABLES or table.startswith("sqlite_"):
                continue
            columns = {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}
            if table == "datasets":
                db.execute("DELETE FROM datasets WHERE name = ?", (dataset,))
            elif "dataset" in columns:
                db.execute(f'DELETE FROM "{table}" WHERE dataset = ?', (dataset,))
            elif "copy" in columns:
                db.executemany(f'DELETE FROM "{table}" WHERE copy = ?',
                               ((copy,) for copy in copies))


def record_uncovered(db: sqlite3.Connection, location: str, below: str, depth: int,
                     found: Iterable[str], now: str) -> dict[str, str]:
    """Record the folders found uncovered up to ``depth`` levels below ``below`` on
    ``location`` in a complete check; forget those there no longer uncovered.
    Return each found folder's first sighting."""
    found = list(found)
    prefix = os.fsencode(below.strip("/") + "/") if below.strip("/") else b""
    with transaction(db):
        db.executemany(
            "INSERT INTO uncovered_folders VALUES (?, ?, ?, ?) "
            "ON CONFLICT (location, path) DO UPDATE SET last_seen = excluded.last_seen",
            ((location, os.fsencode(path), now, now) for path in found))
        keep = {os.fsencode(path) for path in found}
        stale = [bytes(row[0]) for row in db.execute(
            "SELECT path FROM uncovered_folders WHERE location = ?", (location,))
            if bytes(row[0]).startswith(prefix) and bytes(row[0]) not in keep
            and bytes(row[0])[len(prefix):].count(b"/") <= depth - 1]
        db.executemany("DELETE FROM uncovered_folders WHERE location = ? AND path = ?",
                       ((location, path) for path in stale))
    return since(db, location, found)


def since(db: sqlite3.Connection, location: str, paths: Iterable[str]) -> dict[str, str]:
    """First sighting of each uncovered folder the catalog remembers."""
    out = {}
    for path in paths:
        row = db.execute("SELECT first_seen FROM uncovered_folders WHERE location = ? "
                         "AND path = ?", (location, os.fsencode(path))).fetchone()
        if row:
            out[path] = row[0]
    return out
