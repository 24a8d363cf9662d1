"""The outcome of an audit, as plain values the reports render.

These mirror the JSON report v1 (report.schema.json) one to one, so the JSON formatter is a
straight conversion and the table formatter reads the same facts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .errors import ExitCode
from .pathnames import copy_label
from .policy import Violation
from .states import CopyState as CopyState
from .states import Status as Status

#: Problems kept per copy for the report; the counts stay exact beyond it.
PROBLEMS_KEPT = 1000


#: The exit code of a run that reached a verdict.
STATUS_EXIT = {Status.PASS: ExitCode.PASS, Status.FAIL: ExitCode.FAIL,
               Status.UNKNOWN: ExitCode.UNKNOWN}


class Verification(enum.StrEnum):
    FULL = "full"
    CACHED = "cached"
    DIGEST = "digest"
    #: Offline media not plugged in: the last full verification's state, kept.
    REMEMBERED = "remembered"
    NONE = "none"


class ProblemKind(enum.StrEnum):
    MISSING = "missing"
    CORRUPT = "corrupt"
    OUTDATED = "outdated"
    EXTRA = "extra"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    problem: ProblemKind
    detail: str = ""


@dataclass
class FileCounts:
    expected: int = 0
    present: int = 0
    missing: int = 0
    corrupt: int = 0
    extra: int = 0
    #: Files (or folders) that could not be read: the copy is then "error".
    unreadable: int = 0
    #: Files that differ from the reference but match an earlier one of theirs.
    outdated: int = 0


@dataclass
class CopyResult:
    location: str
    path: str
    media: str
    site: str
    primary: bool
    offsite: bool
    state: CopyState
    verification: Verification = Verification.NONE
    counted: bool = False
    files: FileCounts = field(default_factory=FileCounts)
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: One line saying why the copy is unreachable/error/missing, if it is.
    detail: str | None = None
    #: How the content was established, e.g. "local read", "remote xxhsum -H2".
    methods: list[str] = field(default_factory=list)
    #: Files whose content was re-read or digest-checked this run / taken from the catalog.
    verified_files: int = 0
    cached_files: int = 0
    #: Another copy of the same dataset that is the same storage, if any.
    same_as: str | None = None
    #: Why this copy shares stored bytes with an earlier copy (hard links), if it does.
    shares_storage: str | None = None
    #: Things the dataset's warnings must say about this copy (e.g. moved storage).
    notes: list[str] = field(default_factory=list)
    #: When this copy's bytes were last read in full: the oldest last full read over
    #: its reference files (now for files read this run), epoch seconds; None when
    #: some file was never read (only a server digest vouches for it).
    verified_at: float | None = None
    #: path -> "algorithm:digest" of files whose content differs from the reference,
    #: so copies that agree with each other can be pointed out (majority view).
    mismatches: dict[str, str] = field(default_factory=dict)
    #: Bytes read and hashed this run (here or on the storage host); server
    #: digests read none.
    bytes_read: int = 0
    #: Files whose last full verification is older than the fixity interval, or
    #: None when not counted.
    overdue_files: int | None = None
    #: Of them, the files this run did not report missing, corrupt or unreadable
    #: (those are news of their own): what the report's overdue note counts.
    overdue_held: int | None = None
    #: Seconds spent establishing the content (reading, hashing, server digests):
    #: with ``bytes_read``, the location's throughput for ``threetwoone plan``.
    read_seconds: float = 0.0

    #: Problems beyond PROBLEMS_KEPT are counted, not kept (a copy may miss a million files).
    problems_omitted: int = 0
    #: What to do about this copy, in words (None when intact); see nextsteps.py.
    next_step: str | None = None

    def add_problem(self, problem: Problem) -> None:
        if problem.problem is ProblemKind.UNREADABLE:
            self.files.unreadable += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(problem)
        else:
            self.problems_omitted += 1

    @property
    def label(self) -> str:
        return copy_label(self.location, self.path)


@dataclass
class DatasetResult:
    name: str
    policy: str
    status: Status
    counts: dict[str, int]
    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    copies: list[CopyResult] = field(default_factory=list)
    reference: str | None = None
    attested: list[str] = field(default_factory=list)
    #: Wall time spent on this dataset (for JUnit's per-testcase time).
    duration_seconds: float = 0.0
    #: Violated rule -> what to do about it, in words; see nextsteps.py.
    next_steps: dict[str, str] = field(default_factory=dict)
    #: With producer manifests: manifests read, files they cover, files of the
    #: primary no manifest names whose reference was recorded (None without).
    reference_files: ReferenceFiles | None = None
    #: Reference files with fewer intact copies (across all copies, each storage
    #: once) than the policy's ``copies``, and with none at all; None when the
    #: dataset has no reference to count against.
    files_at_risk: int | None = None
    files_lost: int | None = None


@dataclass(frozen=True)
class ReferenceFiles:
    manifests: int
    covered: int
    recorded: int

    def as_dict(self) -> dict[str, int]:
        return {"manifests": self.manifests, "covered": self.covered,
                "recorded": self.recorded}

    def __str__(self) -> str:
        return (f"{self.covered} files from {self.manifests} producer manifest"
                f"{'' if self.manifests == 1 else 's'}, {self.recorded} recorded from the "
                "primary")


@dataclass(frozen=True)
class RunSummary:
    """One earlier run as the catalog remembers it (for the HTML history)."""

    started_at: str
    finished_at: str | None
    #: pass | fail | unknown, or None for a run that never finished (killed).
    status: str | None
    exit_code: int | None
    #: Datasets per status in that run.
    totals: dict[str, int]


@dataclass
class AuditResult:
    #: The inventory's absolute path.
    inventory: str
    started_at: str
    finished_at: str
    datasets: list[DatasetResult]
    host: str = ""
    duration_seconds: float = 0.0
    #: ``--shard K/N`` of a sharded run, else None.
    shard: str | None = None
    #: SHA-256 of the inventory file as read (merge checks shards agree on it).
    inventory_sha256: str | None = None
    #: The number of shards a merged report combines (threetwoone merge), else None.
    merged_shards: int | None = None
    #: The ``-d`` names and globs the run was limited to; None: every dataset
    #: (merge refuses shards limited differently: their datasets would be left out).
    selection: list[str] | None = None
    #: ``--policy`` as given (every dataset judged by it), else None.
    policy_override: str | None = None
    #: Unreachable and reached locations, once per run (``{name, kind, state, detail}``).
    locations: list[dict[str, str | None]] = field(default_factory=list)
    #: Folders that lie in no dataset's copy (``{location, path, files, bytes,
    #: since}``): each one fails the run.
    uncovered: list[dict[str, str | int | None]] = field(default_factory=list)
    #: Collections and what listing them found (``{name, location, glob, datasets,
    #: state, detail}``); one not listed in full leaves the run undetermined.
    collections: list[dict[str, str | int | None]] = field(default_factory=list)
    #: Coverage checks (``{location, path, depth, state, detail, uncovered}``);
    #: one that could not be made in full leaves the run undetermined.
    coverage: list[dict[str, str | int | None]] = field(default_factory=list)
    #: Set when the run ended before a verdict (invalid inventory, the tool
    #: failed): the one-line message; ``error_exit_code`` is then 4 or 5.
    error: str | None = None
    error_exit_code: int | None = None
    #: The latest runs in the catalog, newest first (for the HTML page).
    history: list[RunSummary] = field(default_factory=list)
    #: The state catalog's path, and whether this run created it (a first run, or
    #: a catalog that was lost): new baselines are announced with both.
    catalog: str = ""
    catalog_created: bool = False

    @property
    def totals(self) -> dict[str, int]:
        """Datasets per status: ``{pass, fail, unknown}``."""
        return {s.value: sum(1 for d in self.datasets if d.status is s) for s in Status}

    @property
    def bytes_read(self) -> int:
        return sum(c.bytes_read for d in self.datasets for c in d.copies if not c.same_as)

    @property
    def status(self) -> Status:
        statuses = {d.status for d in self.datasets}
        if Status.FAIL in statuses or self.uncovered:
            return Status.FAIL
        if (Status.UNKNOWN in statuses
                or any(c["state"] != "listed" for c in self.collections)
                or any(c["state"] != "checked" for c in self.coverage)):
            return Status.UNKNOWN
        return Status.PASS

    @property
    def exit_code(self) -> int:
        if self.error_exit_code is not None:
            return self.error_exit_code
        return int(STATUS_EXIT[self.status])
