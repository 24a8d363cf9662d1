"""Data nobody declared: ``coverage:`` folders whose sub-folders must each lie
in some dataset's copy.

The commonest way raw data is lost is not bit rot but a run folder nobody
added to the inventory.  For each coverage entry the folders ``depth`` levels
below its path are listed; a folder that lies in no copy of any dataset
(declared, or found by a collection) is *uncovered*, and reported with the
files and bytes in it that no copy holds.  A folder that merely contains
copies (``runs/R7`` holding the dataset ``runs/R7/raw``) is uncovered only if
something outside those copies holds files.

Listing is level by level and only uncovered data is walked in full: a
well-covered NAS costs one listing per level, whatever it holds.
"""

from __future__ import annotations

import bisect
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .backends import (
    Backend,
    BackendError,
    Entry,
    EntryKind,
    FolderListing,
    LocationUnreachable,
    WalkProblem,
)
from .collection import could_not_list, ignored, unusable_name
from .inventory import CoverageSpec, Inventory, Location, copy_address
from .pathnames import display

BackendFor = Callable[[Location], Backend]


@dataclass
class Uncovered:
    """A folder at a coverage depth holding files in no dataset's copy."""

    location: str
    path: str
    files: int = 0
    bytes: int = 0
    #: Set when part of it could not be listed (the counts are then a floor).
    detail: str | None = None
    #: When it was first found uncovered (from the catalog).
    since: str | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        return {"location": self.location, "path": display(self.path), "files": self.files,
                "bytes": self.bytes, "since": self.since, "detail": self.detail,
                "next_step": "declare it in the inventory (a dataset with its copies, or a "
                             "collection whose glob matches it), or ignore it in the "
                             "coverage entry if it needs no backup"}


@dataclass
class CoverageCheck:
    spec: CoverageSpec
    #: ``checked``, ``incomplete`` (some folder could not be listed, or the
    #: path is absent) or ``unreachable``.
    state: str = "checked"
    detail: str | None = None
    uncovered: list[Uncovered] = field(default_factory=list)

    def as_dict(self) -> dict[str, str | int | None]:
        return {"location": self.spec.location, "path": display(self.spec.path),
                "depth": self.spec.depth, "state": self.state, "detail": self.detail,
                "uncovered": len(self.uncovered)}


class Claims:
    """Every folder some dataset's copy claims, by storage (a copy's address
    without its path), as sorted paths: "is this folder in a copy" and "does
    it hold a copy" are a set lookup and a bisect."""

    def __init__(self, inventory: Inventory) -> None:
        self.locations = inventory.locations
        by_storage: dict[tuple[str, ...], set[str]] = {}
        for dataset in inventory.datasets.values():
            for copy in dataset.copies:
                address = copy_address(inventory.locations[copy.location], copy.path)
                by_storage.setdefault(address[:-1], set()).add(address[-1])
        self._paths = {storage: sorted(paths) for storage, paths in by_storage.items()}
        self._sets = {storage: set(paths) for storage, paths in by_storage.items()}

    def _address(self, location: str, path: str) -> tuple[tuple[str, ...], str]:
        address = copy_address(self.locations[location], path)
        return address[:-1], address[-1]

    def covers(self, location: str, path: str) -> bool:
        """Whether ``path`` is a copy's folder or lies inside one."""
        storage, full = self._address(location, path)
        claimed = self._sets.get(storage, set())
        while True:
            if full in claimed:
                return True
            parent = posixpath.dirname(full)
            if parent == full:
                return False
            full = parent

    def holds_copies(self, location: str, path: str) -> bool:
        """Whether some copy's folder lies strictly inside ``path``."""
        storage, full = self._address(location, path)
        paths = self._paths.get(storage, [])
        prefix = full.rstrip("/") + "/"
        index = bisect.bisect_left(paths, prefix)
        return index < len(paths) and paths[index].startswith(prefix)


def check_coverage(inventory: Inventory, backend_for: BackendFor) -> list[CoverageCheck]:
    """Every ``coverage:`` entry of ``inventory`` (whose datasets include the
    collections' found ones)."""
    claims = Claims(inventory)
    return [_check(spec, inventory.locations[spec.location], backend_for, claims)
            for spec in inventory.coverage]


def _check(spec: CoverageSpec, location: Location, backend_for: BackendFor,
           claims: Claims) -> CoverageCheck:
    check = CoverageCheck(spec)
    try:
        backend = backend_for(location)
    except LocationUnreachable as exc:
        check.state, check.detail = "unreachable", str(exc)
        return check
    except BackendError as exc:
        check.state, check.detail = "incomplete", str(exc)
        return check
    problems: list[str] = []
    level = [spec.path]
    for depth in range(spec.depth):
        below: list[str] = []
        for folder in level:
            failures = len(problems)
            listing = _listed(backend, folder, problems)
            if listing is None:
                if depth == 0 and len(problems) == failures:  # absent, not unreadable
                    problems.append(f"{display(folder) or '/'} does not exist")
                continue  # below the top: vanished since its parent was listed
            if depth > 0:
                # Above the coverage depth, files in a folder no copy claims are
                # data nobody declared too (runs/R9/raw.bam with depth 2 and no
                # runs/R9/* folder at all).
                loose = Uncovered(spec.location, folder)
                _count(loose, listing.entries, [])
                if loose.files:
                    check.uncovered.append(loose)

            def wanted(path: str) -> bool:
                relative = path[len(spec.path):].lstrip("/")
                return not (ignored(spec.ignore, relative)
                            or claims.covers(spec.location, path))
            for name in listing.folders:
                path = f"{folder}/{name}" if folder else name
                if unusable_name(name):
                    problems.append(f"{display(path)}: not a usable folder name")
                    continue
                if wanted(path):
                    below.append(path)
            for entry in listing.entries:
                path = f"{folder}/{entry.path}" if folder else entry.path
                if entry.kind is EntryKind.SYMLINK and wanted(path):
                    # Not followed: what it leads to may be data nobody declared.
                    problems.append(f"{display(path)} is a symlink, not followed (declare "
                                    "the folder it leads to, or ignore it)")
        level = below
    for folder in level:
        found = _uncovered_data(backend, spec.location, folder, claims)
        if found.files or found.detail:
            check.uncovered.append(found)
    if problems:
        check.state = "incomplete"
        check.detail = could_not_list(problems)
    return check


def _uncovered_data(backend: Backend, location: str, folder: str, claims: Claims
                    ) -> Uncovered:
    """Files and bytes below ``folder`` that lie in no copy."""
    found = Uncovered(location, folder)
    unlisted: list[str] = []
    if not claims.holds_copies(location, folder):
        _count(found, backend.walk(folder), unlisted)
    else:
        # Copies inside: count what lies outside them, one level at a time.
        stack = [folder]
        while stack:
            here = stack.pop()
            listing = _listed(backend, here, unlisted)
            if listing is None:
                continue
            _count(found, listing.entries, unlisted)
            for name in listing.folders:
                path = f"{here}/{name}"
                if unusable_name(name):
                    unlisted.append(f"{display(path)}: not a usable folder name")
                    continue
                if claims.covers(location, path):
                    continue
                if claims.holds_copies(location, path):
                    stack.append(path)
                else:
                    _count(found, backend.walk(path), unlisted, prefix=name)
    if unlisted:
        found.detail = (f"{len(unlisted)} folder(s) below could not be listed (counts are a "
                        f"floor): {unlisted[0]}")
    return found


def _listed(backend: Backend, folder: str, problems: list[str]) -> FolderListing | None:
    """One level of ``folder``; None when it is absent or (said in
    ``problems``) cannot be listed."""
    try:
        return backend.list_folder(folder)
    except BackendError as exc:
        problems.append(f"{display(folder) or '/'}: {exc}")
        return None


def _count(found: Uncovered, items: Iterable[Entry | WalkProblem], unlisted: list[str],
           prefix: str = "") -> None:
    """Add the regular files of ``items`` (a walk or one folder's entries)."""
    try:
        for item in items:
            if isinstance(item, WalkProblem):
                where = f"{prefix}/{item.path}" if prefix else item.path
                unlisted.append(f"{display(where) or '.'}: {item.detail}")
            elif item.kind is EntryKind.FILE:
                found.files += 1
                found.bytes += item.size
    except BackendError as exc:
        unlisted.append(str(exc))
