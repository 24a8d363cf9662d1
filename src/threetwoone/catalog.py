"""The state catalog: an embedded SQLite file at ``--state``.

It keeps, per dataset, the *reference* (what each file should contain, and
where that knowledge came from), per copy and file what was last seen and
verified, and every run's verdicts.  It never holds secrets.

Paths are stored as BLOBs of their raw bytes (``os.fsencode``), so names that
are not UTF-8 are kept exactly.  Digests are JSON ``{algorithm: hex}``.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import StateError
from .results import RunSummary

#: Migrations, applied in order; each one's index+1 is its schema version.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        reference_source TEXT NOT NULL,   -- manifest | primary | accepted
        reference_at TEXT NOT NULL,
        reference_by TEXT
    );
    CREATE TABLE reference_files (
        dataset TEXT NOT NULL,
        path BLOB NOT NULL,
        size INTEGER,                     -- NULL when only a manifest digest is known
        digests TEXT NOT NULL,
        PRIMARY KEY (dataset, path)
    ) WITHOUT ROWID;
    CREATE TABLE copy_files (
        copy TEXT NOT NULL,               -- dataset / location / path
        path BLOB NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER,
        ident TEXT,
        verified_at REAL,                 -- last time its content was established
        result TEXT,                      -- ok | corrupt | unreadable
        PRIMARY KEY (copy, path)
    ) WITHOUT ROWID;
    CREATE TABLE copies (
        copy TEXT PRIMARY KEY,
        dataset TEXT NOT NULL,
        last_audit_at REAL,
        last_state TEXT
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        inventory TEXT NOT NULL,
        user TEXT,
        status TEXT,
        exit_code INTEGER
    );
    CREATE TABLE run_datasets (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        dataset TEXT NOT NULL,
        policy TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,            -- JSON: counts, violations, copy states
        PRIMARY KEY (run_id, dataset)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def default_state_path() -> str:
    env = os.environ.get("THREETWOONE_STATE")
    if env:
        return env
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "threetwoone", "state.sqlite3")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True, slots=True)
class ReferenceFile:
    path: str
    size: int | None
    digests: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CopyFixity:
    """One copy's standing against the fixity schedule (``threetwoone status``)."""

    copy: str  # dataset/location/path
    dataset: str
    last_audit_at: float | None
    last_state: str | None
    #: Files in the dataset's reference.
    files: int
    #: The oldest verification among them (None when none was ever verified).
    oldest_verified_at: float | None
    #: Reference files last verified before the interval, or never.
    overdue: int
    #: Files that come due within a day.
    due_soon: int
    #: Reference files this copy never verified.
    never_verified: int


@dataclass(frozen=True, slots=True)
class Reference:
    dataset: str
    source: str
    recorded_at: str
    recorded_by: str | None
    files: dict[str, ReferenceFile]


class Catalog:
    """One open catalog.  Use as a context manager; writes happen in explicit
    transactions so a killed run leaves the last committed state."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db = self._open(path)

    # -- opening -----------------------------------------------------------
    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if not os.path.exists(path):
                # Created 0600 before SQLite touches it: verdicts are nobody else's business.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise StateError(f"state catalog {path}: cannot create: {exc.strerror}") from None
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            Catalog._migrate(db, path)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state catalog {path} is unusable ({exc}); move it aside to "
                             "start a new one (references will be recorded again)") from None
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection, path: str) -> None:
        with transaction(db):
            db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                       "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            version = row[0] or 0
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"state catalog {path} has schema version {version}, written by a newer "
                    f"threetwoone (this one knows up to {SCHEMA_VERSION}); upgrade threetwoone")
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, now_iso()))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[None]:
        return transaction(self.db)

    # -- references ----------------------------------------------------------
    def reference_info(self, dataset: str) -> tuple[str, str, str | None] | None:
        """(source, recorded at, recorded by) of the dataset's reference, or None."""
        row = self.db.execute(
            "SELECT reference_source, reference_at, reference_by FROM datasets WHERE name=?",
            (dataset,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def reference(self, dataset: str) -> Reference | None:
        """The whole reference in memory: for manifests, not for million-file copies."""
        row = self.db.execute(
            "SELECT reference_source, reference_at, reference_by FROM datasets WHERE name=?",
            (dataset,)).fetchone()
        if row is None:
            return None
        files = {}
        for path, size, digests in self.db.execute(
                "SELECT path, size, digests FROM reference_files WHERE dataset=?", (dataset,)):
            name = os.fsdecode(bytes(path))
            files[name] = ReferenceFile(name, size, json.loads(digests))
        return Reference(dataset, row[0], row[1], row[2], files)

    def save_reference(self, dataset: str, source: str, files: Iterable[ReferenceFile],
                       user: str | None = None) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM reference_files WHERE dataset=?", (dataset,))
            # What each copy verified was verified against the old reference.
            self.db.execute("DELETE FROM copy_files WHERE copy IN "
                            "(SELECT copy FROM copies WHERE dataset=?)", (dataset,))
            self.db.execute(
                "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?)",
                (dataset, source, now_iso(), user or current_user()))
            self.db.executemany(
                "INSERT INTO reference_files VALUES (?, ?, ?, ?)",
                ((dataset, os.fsencode(f.path), f.size, json.dumps(dict(f.digests),
                                                                    sort_keys=True))
                 for f in files))

    # -- per-copy file state -------------------------------------------------
    def last_audit_at(self, copy: str) -> float | None:
        row = self.db.execute("SELECT last_audit_at FROM copies WHERE copy=?",
                              (copy,)).fetchone()
        return None if row is None else row[0]

    def copy_status(self, interval: float, now: float, copy: str | None = None
                    ) -> list[CopyFixity]:
        """Per audited copy (or just ``copy``), its reference files' last
        verification against the fixity ``interval`` at time ``now``.  A reference
        file the copy never verified (absent, or the reference is newer) is overdue."""
        cutoff = now - interval
        where = "WHERE c.copy = ? " if copy is not None else ""
        rows = self.db.execute(
            "SELECT c.copy, c.dataset, c.last_audit_at, c.last_state, COUNT(r.path), "
            "MIN(f.verified_at), "
            "COALESCE(SUM(r.path IS NOT NULL AND (f.verified_at IS NULL "
            "OR f.verified_at <= ?)), 0), "
            "COALESCE(SUM(f.verified_at > ? AND f.verified_at <= ?), 0), "
            "COALESCE(SUM(r.path IS NOT NULL AND f.verified_at IS NULL), 0) "
            "FROM copies c LEFT JOIN reference_files r ON r.dataset = c.dataset "
            "LEFT JOIN copy_files f ON f.copy = c.copy AND f.path = r.path "
            f"{where}GROUP BY c.copy ORDER BY c.dataset, c.copy",
            (cutoff, cutoff, cutoff + 86400, *(() if copy is None else (copy,))))
        return [CopyFixity(*row) for row in rows]

    def latest_policies(self) -> dict[str, str]:
        """Dataset -> the policy its latest recorded verdict was judged by."""
        return dict(self.db.execute(
            "SELECT d.dataset, d.policy FROM run_datasets d WHERE d.run_id = "
            "(SELECT MAX(run_id) FROM run_datasets e WHERE e.dataset = d.dataset)"))

    # -- runs ----------------------------------------------------------------
    def start_run(self, inventory: str) -> int:
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO runs (started_at, inventory, user) VALUES (?, ?, ?)",
                (now_iso(), inventory, current_user()))
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, exit_code: int,
                   datasets: Iterable[tuple[str, str, str, dict[str, Any]]]) -> None:
        with self.transaction():
            self.db.execute("UPDATE runs SET finished_at=?, status=?, exit_code=? WHERE id=?",
                            (now_iso(), status, exit_code, run_id))
            self.db.executemany(
                "INSERT OR REPLACE INTO run_datasets VALUES (?, ?, ?, ?, ?)",
                ((run_id, name, policy, status, json.dumps(summary, sort_keys=True))
                 for name, policy, status, summary in datasets))

    def recent_runs(self, limit: int) -> list[RunSummary]:
        """The latest ``limit`` runs, newest first, with datasets per status."""
        runs = self.db.execute(
            "SELECT id, started_at, finished_at, status, exit_code FROM runs "
            "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for run_id, started, finished, status, code in runs:
            totals = {"pass": 0, "fail": 0, "unknown": 0}
            for verdict, count in self.db.execute(
                    "SELECT status, COUNT(*) FROM run_datasets WHERE run_id=? GROUP BY status",
                    (run_id,)):
                totals[verdict] = count
            out.append(RunSummary(started, finished, status, code, totals))
        return out

    def history(self, dataset: str | None = None, limit: int = 50
                ) -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
        query = ("SELECT r.started_at, d.dataset, d.policy, d.status, d.summary "
                 "FROM run_datasets d JOIN runs r ON r.id = d.run_id ")
        args: tuple[Any, ...] = ()
        if dataset:
            query += "WHERE d.dataset = ? "
            args = (dataset,)
        query += "ORDER BY r.id DESC, d.dataset LIMIT ?"
        for started, name, policy, status, summary in self.db.execute(query, (*args, limit)):
            yield started, name, policy, status, json.loads(summary)


@contextmanager
def exclusive_lock(path: str, timeout: float) -> Iterator[None]:
    """Hold ``PATH.lock`` for the whole run so two audits (an overlapping cron
    job) never interleave; wait up to ``timeout`` seconds, then give up."""
    lock_path = path + ".lock"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(lock_path)), mode=0o700, exist_ok=True)
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateError(f"state catalog {path}: cannot create its lock file: "
                         f"{exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateError(
                        f"state catalog {path} is in use by another threetwoone run "
                        f"(waited {timeout:g} s; see --lock-timeout)") from None
                time.sleep(0.1)  # polling a lock held by another process
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def transaction(db: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """One explicit transaction: committed on success, rolled back on any error
    (a killed run leaves the last committed state).  ``IMMEDIATE`` takes the
    write lock at once; ``DEFERRED`` suits writes to temporary tables only."""
    db.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
