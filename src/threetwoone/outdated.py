"""Outdated copies: after ``accept`` replaced a reference, copies not yet
re-synced still hold the earlier content.  That is not corruption: when every
file of a copy that differs from the reference matches an earlier reference of
that file (kept in the catalog's ``reference_history``), the copy is
``outdated`` -- it does not count, does not break ``corrupt: 0``, and its next
step is a re-sync from the primary.

Only a strong digest (md5, sha*, xxh3_128) can match an earlier reference: a
32-bit checksum in common proves nothing.  One file that matches no earlier
reference keeps the whole copy ``corrupt``.
"""

from __future__ import annotations

import json
import os
import sqlite3

from .checksums import WEAK_ALGORITHMS
from .results import CopyResult, Problem, ProblemKind


def earlier_match(db: sqlite3.Connection, dataset: str, path: str, digest_key: str
                  ) -> str | None:
    """When ``path``'s content (``algorithm:hex``) is that of an earlier reference
    of it, the time that reference was replaced; else None."""
    algorithm, _sep, digest = digest_key.partition(":")
    if not digest or algorithm in WEAK_ALGORITHMS:
        return None
    for digests, replaced_at in db.execute(
            "SELECT digests, replaced_at FROM reference_history WHERE dataset=? AND path=? "
            "ORDER BY version DESC", (dataset, os.fsencode(path))):
        if str(json.loads(digests).get(algorithm, "")).lower() == digest.lower():
            return str(replaced_at)
    return None


def mark_outdated(db: sqlite3.Connection, dataset: str, result: CopyResult) -> None:
    """Turn ``result``'s corrupt files into outdated ones when every one of them
    matches an earlier reference; otherwise leave them all corrupt."""
    corrupt = result.files.corrupt
    if not corrupt or len(result.mismatches) != corrupt:
        return  # nothing differs, or some differing file was never hashed
    replaced: dict[str, str] = {}
    for path, digest_key in result.mismatches.items():
        when = earlier_match(db, dataset, path, digest_key)
        if when is None:
            return
        replaced[path] = when
    result.files.corrupt = 0
    result.files.outdated = corrupt
    result.problems = [
        Problem(p.path, ProblemKind.OUTDATED,
                f"as in the reference replaced {replaced[p.path]} (content from before an "
                "accept)")
        if p.problem is ProblemKind.CORRUPT and p.path in replaced else p
        for p in result.problems]
