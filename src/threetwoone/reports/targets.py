"""Where reports go: ``--report FORMAT:PATH`` (repeatable) and ``-o FILE``.

Every target is checked before anything is audited, so a typo costs a second,
not a night's audit; a bad one is a usage error (exit 2).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..files import kind_of

if TYPE_CHECKING:
    from ..inventory import Inventory


@dataclass(frozen=True)
class ReportTarget:
    format: str
    path: str
    #: ``-o`` gets the ``-q`` view of the ``--format``; ``--report`` files are whole.
    quiet: bool = False


def parse_target(text: str, formats: Iterable[str]) -> ReportTarget:
    """``json:/var/lib/threetwoone/last.json`` -> ReportTarget; ValueError says why not."""
    choices = list(formats)
    fmt, sep, path = text.partition(":")
    if not sep:
        raise ValueError(f"{text!r} is not FORMAT:PATH (formats: {', '.join(choices)})")
    if fmt not in choices:
        raise ValueError(f"unknown report format {fmt!r} in {text!r} (formats: "
                         f"{', '.join(choices)})")
    check_path(path)
    return ReportTarget(fmt, path)


def check_path(path: str) -> None:
    """A report path must name a regular file (or nothing yet) in an existing
    folder.  Raises ValueError naming what is wrong.

    A report is written to a temporary file renamed over the target: a device
    (``/dev/null``, ``/dev/stdout`` as root), a FIFO or a socket would be
    replaced by a regular file, and a symlink by a file in its place.  So only
    regular files are replaced; ``-o -`` is the way to standard output.  Called
    when the options are read and again just before each rename."""
    if not path:
        raise ValueError("the report path is empty")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: folder {folder} does not exist")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path} is a folder")
    if stat.S_ISLNK(info.st_mode):
        raise ValueError(f"{path} is a symbolic link, not a regular file; a report never "
                         "replaces a link: name the file it points to (or - for standard "
                         "output)")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is {kind_of(info.st_mode)}, not a regular file; a report "
                         "replaces only regular files (use - for standard output)")


def check_not_input(targets: Iterable[ReportTarget], inputs: Mapping[str, str]) -> None:
    """ValueError when a report would land on something the run reads or
    keeps: ``inputs`` maps paths (files, or folders meaning everything inside)
    to what they are in words ("the inventory", "local copy nas:ds")."""
    protected = [(os.path.realpath(path), what) for path, what in inputs.items()]
    for target in targets:
        real = _real(target.path)
        for path, what in protected:
            if real == path or real.startswith(path.rstrip(os.sep) + os.sep):
                where = "is" if real == path else "lies inside"
                raise ValueError(f"{target.path} {where} {what}; the audit never writes "
                                 "there: choose another path for the report")
            if _same_file(target.path, path):
                raise ValueError(f"{target.path} is {what} (a hard link to it); choose "
                                 "another path for the report")


def collection_areas(inventory: Inventory) -> list[tuple[str, list[str], str]]:
    """Where the copies a collection will find may lie, known without listing
    (so also when the run ends before they are found): per local location,
    its root, the path's parts as globs (the collection's glob; a template with
    ``{path}`` as that glob and ``{name}`` as ``*``), and what they are."""
    out = []
    for collection in inventory.collections.values():
        glob = collection.glob.strip("/")
        patterns = [(collection.location, glob)] + [
            (copy.location, copy.path.replace("{path}", glob).replace("{name}", "*"))
            for copy in collection.copies]
        for name, pattern in patterns:
            location = inventory.locations.get(name)
            if location is not None and location.kind == "local":
                parts = [part for part in pattern.split("/") if part not in ("", ".")]
                out.append((location.root, parts,
                            f"a copy collection {collection.name} finds on {name} "
                            f"({'/'.join(parts)})"))
    return out


def check_not_in_collections(targets: Iterable[ReportTarget], inventory: Inventory) -> None:
    """ValueError when a report would land inside a folder a collection's glob
    or copy template matches (each path part by its glob part)."""
    import fnmatch

    areas = [(os.path.realpath(root), parts, what)
             for root, parts, what in collection_areas(inventory)]
    for target in targets:
        real = _real(target.path)
        for root, parts, what in areas:
            if not real.startswith(root.rstrip(os.sep) + os.sep):
                continue
            below = real[len(root.rstrip(os.sep)) + 1:].split(os.sep)
            if len(below) > len(parts) and all(
                    fnmatch.fnmatchcase(name, part)
                    for name, part in zip(below[:len(parts)], parts, strict=True)):
                raise ValueError(f"{target.path} lies inside {what}; the audit never writes "
                                 "there: choose another path for the report")


def _real(path: str) -> str:
    """Symlinks resolved in the folders (a report path itself is never a link)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(folder), name)


def _same_file(one: str, other: str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def check_distinct(targets: Iterable[ReportTarget]) -> None:
    """Two reports to one file would overwrite each other: ValueError."""
    seen: dict[str, ReportTarget] = {}
    for target in targets:
        key = os.path.realpath(target.path)
        if key in seen:
            raise ValueError(f"{target.path} is named twice (as {seen[key].format} and "
                             f"{target.format})")
        seen[key] = target


def run_inputs(inventory_path: str, state: str, inventory: Inventory | None = None,
               policy_files: Iterable[str] = ()) -> dict[str, str]:
    """What a report must never replace, for ``check_not_input``: the
    inventory, the state catalog (with its WAL, shared-memory and journal files),
    and once the inventory is loaded, the policy files and every local copy
    (the audit only ever reads them)."""
    inputs = {inventory_path: "the inventory"}
    for suffix in ("", "-wal", "-shm", "-journal"):
        inputs[state + suffix] = "the state catalog"
    inputs.update((source, "a policy file of this run") for source in policy_files)
    if inventory is None:
        return inputs
    for name, dataset in inventory.datasets.items():
        for copy in dataset.copies:
            location = inventory.locations.get(copy.location)
            if location is not None and location.kind == "local":
                folder = os.path.join(location.root, copy.path.strip("/"))
                inputs[folder] = f"local copy {copy.location}:{copy.path} of dataset {name}"
    return inputs
