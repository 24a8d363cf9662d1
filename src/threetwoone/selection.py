"""Which datasets a run audits: ``-d`` names and globs, and ``--shard K/N``.

A shard is chosen by a stable hash of the dataset's name (SHA-256, not
Python's per-process ``hash``), so every machine, every night, puts a dataset
in the same shard, and adding datasets moves no other dataset.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .pathnames import display

#: Names shown when a -d matches nothing (an inventory may have thousands).
SHOWN_NAMES = 10


class SelectionError(ValueError):
    """A ``-d`` that names no dataset of the inventory."""


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def select(names: Sequence[str], patterns: Iterable[str]) -> list[str]:
    """The datasets ``patterns`` select, in inventory order (all when none).
    A pattern is an exact name or a glob (``*`` crosses ``/``: ``ngi/*``
    selects every dataset of collection ngi)."""
    patterns = list(patterns)
    if not patterns:
        return list(names)
    chosen: set[str] = set()
    unknown = []
    for pattern in patterns:
        if pattern in names:
            chosen.add(pattern)  # exact first: a name may hold '[' or '*'
            continue
        matched = fnmatch.filter(names, pattern) if _is_glob(pattern) else []
        if not matched:
            unknown.append(pattern)
        chosen.update(matched)
    if unknown:
        shown = ", ".join(display(n) for n in names[:SHOWN_NAMES])
        more = (f" and {len(names) - SHOWN_NAMES} more; 'threetwoone datasets INVENTORY' "
                "lists them" if len(names) > SHOWN_NAMES else "")
        words = []
        exact = [display(p) for p in unknown if not _is_glob(p)]
        globs = [display(p) for p in unknown if _is_glob(p)]
        if exact:
            words.append(f"unknown {'dataset' if len(exact) == 1 else 'datasets'}: "
                         f"{', '.join(exact)}")
        if globs:
            words.append(f"no dataset matches {', '.join(globs)}")
        raise SelectionError(f"{'; '.join(words)} (the inventory has: {shown}{more})")
    return [name for name in names if name in chosen]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, name: str) -> bool:
        return shard_of(name, self.count) == self.index


#: Most shards a run may be split into (a job array larger than this is a typo).
MAX_SHARDS = 100_000


def parse_shard(text: str) -> Shard:
    """``K/N`` with 0 <= K < N."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"{text!r} is not K/N (shard K, 0-based, of N; e.g. 0/4)")
    k, n = int(index), int(count)
    if not 1 <= n <= MAX_SHARDS:
        raise ValueError(f"{text!r}: the number of shards must be 1 to {MAX_SHARDS}")
    if not 0 <= k < n:
        raise ValueError(f"{text!r}: shard must be 0 to {n - 1} (shards are numbered from 0)")
    return Shard(k, n)


def shard_of(name: str, count: int) -> int:
    import hashlib  # only sharded runs pay for it

    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count
