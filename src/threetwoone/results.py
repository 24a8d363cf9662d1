"""The outcome of an audit, as plain values the reports render.

These mirror DESIGN.md's JSON report v1 one to one, so the JSON formatter is a
straight conversion and the table formatter reads the same facts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .policy import Violation

#: Problems kept per copy for the report; the counts stay exact beyond it.
MAX_PROBLEMS = 1000


class CopyState(enum.StrEnum):
    INTACT = "intact"
    INCOMPLETE = "incomplete"
    CORRUPT = "corrupt"
    MISSING = "missing"
    UNREACHABLE = "unreachable"
    ERROR = "error"


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


class Verification(enum.StrEnum):
    FULL = "full"
    CACHED = "cached"
    DIGEST = "digest"
    NONE = "none"


class ProblemKind(enum.StrEnum):
    MISSING = "missing"
    CORRUPT = "corrupt"
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
    #: When this copy's content was last fully established: the oldest time over
    #: its reference files (now for files re-read this run), epoch seconds.
    verified_at: float | None = None
    #: path -> "algorithm:digest" of files whose content differs from the reference,
    #: so copies that agree with each other can be pointed out (majority view).
    mismatches: dict[str, str] = field(default_factory=dict)

    #: Problems beyond MAX_PROBLEMS are counted, not kept (a copy may miss a million files).
    problems_omitted: int = 0

    def add_problem(self, problem: Problem) -> None:
        if problem.problem is ProblemKind.UNREADABLE:
            self.files.unreadable += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.problems_omitted += 1

    @property
    def label(self) -> str:
        return f"{self.location}:{self.path}"


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


@dataclass
class AuditResult:
    inventory: str
    started_at: str
    finished_at: str
    datasets: list[DatasetResult]

    @property
    def status(self) -> Status:
        statuses = {d.status for d in self.datasets}
        if Status.FAIL in statuses:
            return Status.FAIL
        if Status.UNKNOWN in statuses:
            return Status.UNKNOWN
        return Status.PASS

    @property
    def exit_code(self) -> int:
        return {Status.PASS: 0, Status.FAIL: 1, Status.UNKNOWN: 3}[self.status]
