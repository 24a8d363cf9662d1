"""The state catalog: an embedded SQLite file at ``--state``.

It keeps, per dataset, the *reference* (what each file should contain, and
where that knowledge came from), per copy and file what was last seen and
verified, and every run's verdicts.  It never holds secrets.

Paths are stored as BLOBs of their raw bytes (``os.fsencode``), so names that
are not UTF-8 are kept exactly.  Digests are JSON ``{algorithm: hex}``.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import sqlite3
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .catalogerrors import KEEP_IT, explain
from .checksums import WEAK_ALGORITHMS
from .errors import StateError
from .files import not_a_file_problem
from .pathnames import copy_label
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
    # 2: what a cached verification is bound to (issues 10 and 11).  Reference
    # versions: every new reference (first audit, accept, a re-issued manifest) gets
    # the next number, and each file's entry keeps the version in which its content
    # was last set.  Entries an accept replaces move to reference_history.  Per copy
    # file: the reference version it was checked against, how (full read or server
    # digest), and when its bytes were last read and matched (full_at: only a full
    # read sets it).  Per copy: the identity of the storage it was verified on.
    # Rows written before this migration know none of that: ref_version stays NULL,
    # so they are never trusted and every file is checked again once.
    """
    ALTER TABLE datasets ADD COLUMN reference_version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE reference_files ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE reference_versions (
        dataset TEXT NOT NULL,
        version INTEGER NOT NULL,
        source TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        recorded_by TEXT,
        PRIMARY KEY (dataset, version)
    );
    INSERT INTO reference_versions
        SELECT name, 1, reference_source, reference_at, reference_by FROM datasets;
    CREATE TABLE reference_history (
        dataset TEXT NOT NULL,
        path BLOB NOT NULL,
        version INTEGER NOT NULL,         -- the version this entry belonged to
        size INTEGER,
        digests TEXT NOT NULL,
        replaced_at TEXT NOT NULL,
        PRIMARY KEY (dataset, path, version)
    ) WITHOUT ROWID;
    ALTER TABLE copy_files ADD COLUMN full_at REAL;
    ALTER TABLE copy_files ADD COLUMN evidence TEXT;
    ALTER TABLE copy_files ADD COLUMN ref_version INTEGER;
    ALTER TABLE copies ADD COLUMN storage_identity TEXT
    """,
    # 3: what ``threetwoone plan`` reads instead of touching storage (repair/).
    # Per run and dataset, a digest of the dataset's declaration as audited (its
    # copies, their locations, its policy), so a plan can tell the inventory
    # changed since.  Per run, each copy's state and what it held.  Per location,
    # the read throughput measured when it was last audited (bytes read and the
    # seconds spent reading them), for site pairs without a declared link.
    """
    ALTER TABLE run_datasets ADD COLUMN declaration TEXT;
    CREATE TABLE run_copies (
        run_id INTEGER NOT NULL,
        dataset TEXT NOT NULL,
        position INTEGER NOT NULL,        -- the copy's place in the dataset's copies
        copy TEXT NOT NULL,               -- dataset / location / path, as copy_files
        location TEXT NOT NULL,
        path BLOB NOT NULL,
        primary_copy INTEGER NOT NULL,
        state TEXT NOT NULL,
        counted INTEGER NOT NULL,
        same_as TEXT,                     -- the copy's label it is the same storage as
        shares_storage TEXT,              -- why it shares stored files (hard links)
        files INTEGER NOT NULL,           -- reference files present
        bytes INTEGER NOT NULL,           -- their bytes
        PRIMARY KEY (run_id, dataset, position)
    ) WITHOUT ROWID;
    CREATE TABLE location_throughput (
        location TEXT PRIMARY KEY,
        bytes_read INTEGER NOT NULL,
        seconds REAL NOT NULL,
        measured_at REAL NOT NULL
    )
    """,
    # 4: collections and coverage (memory.py): the datasets each collection found,
    # so one whose folder has gone fails instead of vanishing; and since when
    # each uncovered folder has been seen.
    """
    CREATE TABLE collection_members (
        dataset TEXT PRIMARY KEY,
        collection TEXT NOT NULL,
        location TEXT NOT NULL,
        path BLOB NOT NULL,               -- the matched folder below the location's root
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE TABLE uncovered_folders (
        location TEXT NOT NULL,
        path BLOB NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (location, path)
    ) WITHOUT ROWID;
    """,
    # 5: copy keys escape % and / in dataset and location names (inventory.copy_key,
    # %25 and %2F).  Rows of copies written under the old, unescaped spelling are
    # never read again; status listed them (and, past the fixity interval, counted
    # them overdue) until `forget`.  They are dropped with their copy_files, so
    # those copies are verified in full by their next audit (the safe direction:
    # an old key may also be another copy's, the ambiguity the escaping ends).
    # Old spellings are told by the copy's dataset (copies) and, for location names,
    # by the runs that wrote them (run_copies).  run_copies itself is history and
    # keeps its keys: a record of past runs, which plan matches only against the
    # inventory's current keys.  References are keyed by dataset name: untouched.
    # No semicolons below: migrations are split on them.
    """
    CREATE TEMP TABLE stale_copy_keys AS
        SELECT copy FROM copies
        WHERE (instr(dataset, '/') OR instr(dataset, '%'))
          AND substr(copy, 1, length(replace(replace(dataset, '%', '%25'), '/', '%2F')) + 1)
              != replace(replace(dataset, '%', '%25'), '/', '%2F') || '/'
        UNION
        SELECT copy FROM run_copies
        WHERE (instr(dataset, '/') OR instr(dataset, '%')
               OR instr(location, '/') OR instr(location, '%'))
          AND substr(copy, 1, length(replace(replace(dataset, '%', '%25'), '/', '%2F'))
                              + length(replace(replace(location, '%', '%25'), '/', '%2F')) + 2)
              != replace(replace(dataset, '%', '%25'), '/', '%2F') || '/'
                 || replace(replace(location, '%', '%25'), '/', '%2F') || '/';
    DELETE FROM copy_files WHERE copy IN (SELECT copy FROM temp.stale_copy_keys);
    DELETE FROM copies WHERE copy IN (SELECT copy FROM temp.stale_copy_keys);
    DROP TABLE temp.stale_copy_keys
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

#: Seconds a worker's write waits for another's to finish (a million-file copy's
#: commit takes seconds; never long enough to need more).
WORKER_BUSY_TIMEOUT = 600.0


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


class ReferenceInfo(NamedTuple):
    """A dataset's reference as the catalog records it."""

    source: str  # manifest | primary | accepted
    recorded_at: str
    recorded_by: str | None


@dataclass(frozen=True, slots=True)
class CopyFixity:
    """One copy's standing against the fixity schedule (``threetwoone status``)."""

    copy: str  # dataset/location/path (inventory.copy_key)
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


#: Bytes a location must have been read for its throughput to be recorded: below
#: that, the time to open files and start reads swamps the transfer rate.
MIN_MEASURED_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class RunCopy:
    """One copy as a run found it (``run_copies``)."""

    dataset: str
    position: int
    copy: str  # inventory.copy_key, the key of its copy_files rows
    location: str
    path: str
    primary: bool
    state: str
    counted: bool
    same_as: str | None
    shares_storage: str | None
    files: int
    bytes: int

    @property
    def label(self) -> str:
        return copy_label(self.location, self.path)


@dataclass(frozen=True)
class LatestAudit:
    """A dataset's latest recorded verdict, with its copies."""

    dataset: str
    run_id: int
    started_at: str
    policy: str
    status: str
    #: Digest of the dataset's declaration when audited (None: recorded by a
    #: threetwoone from before plan).
    declaration: str | None
    summary: dict[str, Any]
    copies: list[RunCopy]


class Catalog:
    """One open catalog.  Use as a context manager; writes happen in explicit
    transactions so a killed run leaves the last committed state."""

    def __init__(self, path: str, create: bool = True,
                 db: sqlite3.Connection | None = None) -> None:
        self.path = path
        #: False when there was no catalog and ``create`` was False (``history``
        #: and ``status`` only read: a mistyped --state must not leave a new,
        #: empty catalog behind); it is then an empty one in memory.
        self.exists = create or os.path.lexists(path)
        #: Another connection of this run writes the catalog too (for_worker).
        self.shared = db is not None
        if db is not None:  # another connection to an open catalog (for_worker)
            self.db = db
        else:
            self.db = self._open(path) if self.exists else self._empty()

    @classmethod
    def for_worker(cls, catalog: Catalog) -> Catalog:
        """Another connection to the open ``catalog``, for one worker thread of a
        run that audits several datasets at once (audit.py).  It may be closed
        from the thread that made the workers, once they are done.  Writes of
        the workers take turns: one may wait behind another's long commit."""
        db = sqlite3.connect(catalog.path, timeout=WORKER_BUSY_TIMEOUT,
                             isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return cls(catalog.path, db=db)

    # -- opening -----------------------------------------------------------
    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        check_catalog_path(path)
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if not os.path.exists(path):
                # Created 0600 before SQLite touches it: verdicts are nobody else's business.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise explain(exc, path) from exc
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            Catalog._migrate(db, path)
        except sqlite3.Error as exc:
            # Told apart: read-only, full, locked, damaged... (catalogerrors.py).
            raise explain(exc, path) from exc
        return db

    @staticmethod
    def _empty() -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", isolation_level=None)
        Catalog._migrate(db, ":memory:")
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
                    f"threetwoone (this one knows up to {SCHEMA_VERSION}): upgrade threetwoone. "
                    f"{KEEP_IT}")
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
    def reference_info(self, dataset: str) -> ReferenceInfo | None:
        """Where the dataset's reference came from, when and by whom; None if it has none."""
        row = self.db.execute(
            "SELECT reference_source, reference_at, reference_by FROM datasets WHERE name=?",
            (dataset,)).fetchone()
        return None if row is None else ReferenceInfo(row[0], row[1], row[2])

    # -- per-copy file state -------------------------------------------------
    def last_audit_at(self, copy: str) -> float | None:
        row = self.db.execute("SELECT last_audit_at FROM copies WHERE copy=?",
                              (copy,)).fetchone()
        return None if row is None else row[0]

    def storage_identity(self, copy: str) -> dict[str, str] | None:
        """The storage ``copy`` was last verified on (see Backend.storage_identity)."""
        row = self.db.execute("SELECT storage_identity FROM copies WHERE copy=?",
                              (copy,)).fetchone()
        if row is None or row[0] is None:
            return None
        identity: dict[str, str] = json.loads(row[0])
        return identity

    def copy_status(self, interval: float, now: float, copy: str | None = None
                    ) -> list[CopyFixity]:
        """Per audited copy (or just ``copy``), its reference files' last full
        read against the fixity ``interval`` at time ``now``.  Only a full read
        that matched the current version of the file's reference entry counts: a
        reference file the copy never read so (absent, only checked by a server
        digest, last check failed, or the reference is newer) is overdue, and so
        is one whose read is dated after ``now`` (the clock was ahead then)."""
        where = "WHERE c.copy = :copy " if copy is not None else ""
        full = ("(CASE WHEN f.result = 'ok' AND f.ref_version = r.version "
                "AND f.full_at <= :now THEN f.full_at END)")
        rows = self.db.execute(
            f"SELECT c.copy, c.dataset, c.last_audit_at, c.last_state, COUNT(r.path), "
            f"MIN({full}), "
            f"COALESCE(SUM(r.path IS NOT NULL AND ({full} IS NULL OR {full} <= :cutoff)), 0), "
            f"COALESCE(SUM({full} > :cutoff AND {full} <= :soon), 0), "
            f"COALESCE(SUM(r.path IS NOT NULL AND {full} IS NULL), 0) "
            f"FROM copies c LEFT JOIN reference_files r ON r.dataset = c.dataset "
            f"LEFT JOIN copy_files f ON f.copy = c.copy AND f.path = r.path "
            f"{where}GROUP BY c.copy ORDER BY c.dataset, c.copy",
            {"now": now, "cutoff": now - interval, "soon": now - interval + 86400,
             "copy": copy})
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
                "INSERT OR REPLACE INTO run_datasets (run_id, dataset, policy, status, summary) "
                "VALUES (?, ?, ?, ?, ?)",
                ((run_id, name, policy, status, json.dumps(summary, sort_keys=True))
                 for name, policy, status, summary in datasets))

    def record_plan_facts(self, run_id: int, declarations: Mapping[str, str],
                          copies: Iterable[RunCopy],
                          throughput: Mapping[str, tuple[int, float]], now: float) -> None:
        """What ``threetwoone plan`` needs from this run: each dataset's
        declaration digest, each copy's state and content, and per location
        (bytes read, seconds reading) when it read enough to measure."""
        with self.transaction():
            self.db.executemany(
                "UPDATE run_datasets SET declaration = ? WHERE run_id = ? AND dataset = ?",
                ((digest, run_id, name) for name, digest in declarations.items()))
            self.db.executemany(
                "INSERT OR REPLACE INTO run_copies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)", ((run_id, c.dataset, c.position, c.copy, c.location,
                           os.fsencode(c.path), int(c.primary), c.state, int(c.counted),
                           c.same_as, c.shares_storage, c.files, c.bytes) for c in copies))
            self.db.executemany(
                "INSERT OR REPLACE INTO location_throughput VALUES (?, ?, ?, ?)",
                ((location, size, seconds, now)
                 for location, (size, seconds) in throughput.items()
                 if size >= MIN_MEASURED_BYTES and seconds > 0))

    def latest_audit(self, dataset: str) -> LatestAudit | None:
        """The dataset's latest recorded verdict and its copies, or None when no
        run recorded it (or only a threetwoone from before ``plan`` did)."""
        row = self.db.execute(
            "SELECT d.run_id, r.started_at, d.policy, d.status, d.declaration, d.summary "
            "FROM run_datasets d JOIN runs r ON r.id = d.run_id WHERE d.dataset = ? "
            "ORDER BY d.run_id DESC LIMIT 1", (dataset,)).fetchone()
        if row is None:
            return None
        run_id, started, policy, status, declaration, summary = row
        copies = [RunCopy(dataset, position, copy, location, os.fsdecode(path),
                          bool(primary), state, bool(counted), same_as, shares, files, size)
                  for (position, copy, location, path, primary, state, counted, same_as,
                       shares, files, size) in self.db.execute(
                      "SELECT position, copy, location, path, primary_copy, state, counted, "
                      "same_as, shares_storage, files, bytes FROM run_copies "
                      "WHERE run_id = ? AND dataset = ? ORDER BY position",
                      (run_id, dataset))]
        return LatestAudit(dataset, run_id, started, policy, status, declaration,
                           json.loads(summary), copies)

    def throughput(self) -> dict[str, tuple[float, float]]:
        """Location -> (bytes a second it was read at, when) at its last audit
        that read anything."""
        return {location: (size / seconds, measured_at)
                for location, size, seconds, measured_at in self.db.execute(
                    "SELECT location, bytes_read, seconds, measured_at "
                    "FROM location_throughput WHERE seconds > 0")}

    def is_new(self) -> bool:
        """Nothing recorded yet: no run, no reference (a first run, or a lost catalog)."""
        row = self.db.execute("SELECT NOT EXISTS (SELECT 1 FROM runs) AND NOT EXISTS "
                              "(SELECT 1 FROM datasets)").fetchone()
        return bool(row[0])

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


def same_content(size_a: int | None, digests_a: str, size_b: int | None,
                 digests_b: str) -> bool:
    """Do two reference entries describe the same content?  Sizes agree where
    both are known, every algorithm both have agrees, and at least one of those is
    a strong one (a 32-bit checksum in common proves nothing)."""
    if size_a is not None and size_b is not None and size_a != size_b:
        return False
    a, b = json.loads(digests_a), json.loads(digests_b)
    common = [algorithm for algorithm in a if algorithm in b]
    if any(str(a[x]).lower() != str(b[x]).lower() for x in common):
        return False
    return any(x not in WEAK_ALGORITHMS for x in common)


def replace_reference(db: sqlite3.Connection, dataset: str, source: str, recorded_at: str,
                      user: str, staged: str) -> int:
    """Make the rows of the temporary table ``staged`` (path, size, digests) the
    dataset's reference, as its next version; return that version.  Call inside
    a transaction.

    A file whose content is the same as in the current reference keeps its entry's
    version, so what copies verified of it stays valid.  Entries that change or go
    are kept in ``reference_history``: a copy that matches an earlier reference
    can be told from a corrupt one."""
    db.create_function("same_content", 4, same_content, deterministic=True)
    row = db.execute("SELECT reference_version FROM datasets WHERE name=?",
                     (dataset,)).fetchone()
    version = (row[0] if row else 0) + 1
    differs = (f"NOT EXISTS (SELECT 1 FROM {staged} m WHERE m.path = reference_files.path "
               f"AND same_content(reference_files.size, reference_files.digests, m.size, "
               f"m.digests))")
    db.execute(
        f"INSERT OR REPLACE INTO reference_history "
        f"(dataset, path, version, size, digests, replaced_at) "
        f"SELECT dataset, path, version, size, digests, ? FROM reference_files "
        f"WHERE dataset = ? AND {differs}", (recorded_at, dataset))
    db.execute(f"DELETE FROM reference_files WHERE dataset = ? AND {differs}", (dataset,))
    # What the copies verified of files the reference no longer has: nothing to
    # keep (copy rows exist only for reference entries, which lets an audit find
    # the rows of files gone from a copy by merging it with the reference).
    db.execute(f"DELETE FROM copy_files WHERE copy IN (SELECT copy FROM copies WHERE "
               f"dataset = ?) AND NOT EXISTS (SELECT 1 FROM {staged} m "
               f"WHERE m.path = copy_files.path)", (dataset,))
    db.execute(
        f"UPDATE reference_files SET size = COALESCE(m.size, reference_files.size), "
        f"digests = json_patch(reference_files.digests, m.digests) FROM {staged} m "
        f"WHERE reference_files.dataset = ? AND reference_files.path = m.path", (dataset,))
    db.execute(
        f"INSERT INTO reference_files (dataset, path, size, digests, version) "
        f"SELECT ?, path, size, digests, ? FROM {staged} m WHERE NOT EXISTS "
        f"(SELECT 1 FROM reference_files r WHERE r.dataset = ? AND r.path = m.path)",
        (dataset, version, dataset))
    record_version(db, dataset, version, source, recorded_at, user)
    return version


def record_version(db: sqlite3.Connection, dataset: str, version: int, source: str,
                   recorded_at: str, user: str) -> None:
    """The dataset's reference is now ``version``: say so, and when and by whom
    it was recorded (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO datasets (name, reference_source, reference_at, reference_by, "
        "reference_version) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "reference_source = excluded.reference_source, reference_at = excluded.reference_at, "
        "reference_by = excluded.reference_by, reference_version = excluded.reference_version",
        (dataset, source, recorded_at, user, version))
    db.execute("INSERT OR REPLACE INTO reference_versions VALUES (?, ?, ?, ?, ?)",
               (dataset, version, source, recorded_at, user))


#: The byte of the catalog file the run lock covers: far beyond what SQLite locks
#: (its lock bytes sit at 1 GiB), so the two never meet.
LOCK_OFFSET = 1 << 40


def check_catalog_path(path: str) -> None:
    """Before anything is created or opened: the catalog and the -wal and -shm
    files SQLite keeps beside it must be regular files or not exist yet
    (``--state /dev/null`` made ``/dev/null.lock``; opening a FIFO blocks)."""
    for suffix in ("", "-wal", "-shm"):
        problem = not_a_file_problem(path + suffix)
        if problem:
            raise StateError(f"state catalog: {problem}; point --state (or "
                             "$THREETWOONE_STATE) at a regular file or a new path")


@contextmanager
def exclusive_lock(path: str, timeout: float) -> Iterator[None]:
    """Hold the catalog for the whole run, so two runs that write it (an
    overlapping cron job, ``accept`` during an audit) never interleave; wait up to
    ``timeout`` seconds, then give up.

    The lock is on the catalog file itself (an open-file-description lock on one
    byte SQLite never uses), not on a name: a symlink, a relative path or a hard
    link to the same catalog takes the same lock."""
    check_catalog_path(path)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        # Created 0600 before SQLite touches it: verdicts are nobody else's business.
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise explain(exc, path) from exc
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise StateError(
                    f"state catalog {path} is in use by another threetwoone run "
                    f"(waited {timeout:g} s; see --lock-timeout): let it finish. Never "
                    "delete the catalog or its -wal file to break the lock.") from None
            time.sleep(0.1)  # polling a lock held by another process
        yield
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    """Take the run lock on ``fd`` without waiting; False if another holds it.

    Open-file-description locks (Linux) belong to this descriptor alone: closing
    another descriptor of the file (SQLite opens its own) does not drop them, as
    it would a classic POSIX lock, and they conflict between descriptors of one
    process too.  Elsewhere, flock() on the file serves the same purpose."""
    command = getattr(fcntl, "F_OFD_SETLK", None)
    try:
        if command is None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks).
            fcntl.fcntl(fd, command, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET,
                                                 LOCK_OFFSET, 1, 0))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise StateError(f"state catalog: cannot lock it: {exc.strerror}") from None
    return True


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
