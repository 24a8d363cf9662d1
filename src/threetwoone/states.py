"""The states a copy and a dataset can be in: the vocabulary the policy model,
the auditor and the reports share."""

from __future__ import annotations

import enum


class CopyState(enum.StrEnum):
    INTACT = "intact"
    INCOMPLETE = "incomplete"
    CORRUPT = "corrupt"
    #: Every differing file matches an earlier reference (replaced by accept).
    OUTDATED = "outdated"
    MISSING = "missing"
    UNREACHABLE = "unreachable"
    ERROR = "error"


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
