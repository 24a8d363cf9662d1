"""What a backend's listing gives: the entries below a copy's root, the
folders it could not list, what a copy's root is, and one folder's contents.
Plain values, made in their millions by walks; the backend contract itself is
in interface.py."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple


class EntryKind(enum.Enum):
    FILE = "file"
    SYMLINK = "symlink"
    #: FIFOs, sockets, devices: listed, never opened.
    SPECIAL = "special"


NO_DIGESTS: Mapping[str, str] = MappingProxyType({})


class Entry(NamedTuple):
    """One non-directory entry below a copy's root.

    A NamedTuple, not a frozen dataclass: walks make millions of these, and a
    frozen dataclass's ``__init__`` costs several times a tuple's."""

    path: str
    kind: EntryKind
    size: int = 0
    mtime_ns: int | None = None
    #: Changes when the object is replaced: inode number, ETag, ... (None if unknown).
    ident: str | None = None
    #: Digests the server already reported in the listing, ``{algorithm: lowercase hex}``.
    digests: Mapping[str, str] = NO_DIGESTS
    #: Names the file has (hard links), where the backend knows: above 1, another
    #: copy may hold the very same bytes under another name (``cp -al``).
    links: int = 1


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """A folder below the root that could not be listed (permission, I/O, loop)."""

    path: str
    detail: str


@dataclass(frozen=True, slots=True)
class RootInfo:
    """A copy root that exists.  ``identity`` is equal for two roots that are the
    same storage (same directory through a symlink or a bind mount), so the
    auditor can count them once.  None when the backend cannot tell.

    ``identity`` is stable from run to run (it spells the address in one normal
    form).  ``aliases`` are further names of the same root found this run, such
    as one per address the server's host name resolves to, or an identity the
    server gives the folder itself: two roots sharing any of :meth:`keys` are
    the same storage."""

    identity: str | None
    aliases: tuple[str, ...] = ()

    def keys(self) -> tuple[str, ...]:
        """Every name of this root, for the same-storage check."""
        return (self.identity, *self.aliases) if self.identity is not None else self.aliases


@dataclass(frozen=True, slots=True)
class FolderListing:
    """What one folder holds directly: its subfolders' names, and its other
    entries (files, symlinks, special files) with ``path`` the bare name.
    Both sorted by name; symlinks are entries, never followed as folders."""

    folders: tuple[str, ...]
    entries: tuple[Entry, ...] = ()
