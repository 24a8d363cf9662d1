"""What every storage backend offers the auditor, and nothing more.

A backend is a read-only view of one *location* of the inventory (a local
folder, an SFTP host, a WebDAV server, an S3 bucket).  The auditor asks it to:

* ``connect()``: reach and authenticate, or raise :class:`LocationUnreachable`;
* ``stat_root(path)``: does a copy's root exist, and what storage is it really;
* ``storage_identity(path, root)``: what a cached verification of the copy is
  bound to (a change means other bytes, whatever the listing says);
* ``walk(path)``: list every entry below a copy's root, without following links;
* ``open_read(path, relpath)``: read one file (the producer manifest);
* ``hash_files(path, entries, algorithms, ...)``: establish the content of files.

Backends classify their own errors: a location that cannot be reached at all is
:class:`LocationUnreachable` (the copy becomes ``unreachable``); a failure after a
successful connect that stops the whole copy is :class:`CopyFailed` (``error``);
one unreadable file is a :class:`HashResult` with ``error`` set, not an exception.

Relative paths are ``/``-separated ``str`` decoded with ``os.fsdecode`` rules
(surrogateescape), so names that are not valid UTF-8 survive a round trip.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import BinaryIO, ClassVar, NamedTuple

from ..inventory import Location

#: Called by ``hash_files`` as work completes: (files finished, bytes read).
ProgressCallback = Callable[[int, int], None]

#: Files ``Backend.hash_stream`` hands to ``hash_files`` at a time: bounds memory.
STREAM_CHUNK = 2000


class BackendError(Exception):
    """Root of the errors a backend raises; the message is one clear line."""


class LocationUnreachable(BackendError):
    """The location could not be reached or authenticated (DNS, refused, auth, host key)."""


class CopyFailed(BackendError):
    """The location was reached, but this copy could not be audited to the end."""


class NotAFolder(BackendError):
    """A copy's path exists on a reachable location but is a file, not a folder:
    the copy is not there (``missing``)."""


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


class HashResult(NamedTuple):
    """The content of one file as established by ``hash_files``.

    ``digests`` maps algorithm names (see :mod:`threetwoone.checksums`) to
    lowercase hex.  ``method`` is ``"full"`` when the bytes were read and hashed
    (locally or on the storage host) and ``"digest"`` when a checksum the server
    keeps was trusted.  ``error`` set means the file could not be read: it is then
    ``unreadable``, never ``corrupt``.
    """

    path: str
    digests: Mapping[str, str]
    size: int = 0
    error: str | None = None
    method: str = "full"
    #: A short note on how the method was chosen, for the report (e.g. "remote xxhsum").
    via: str | None = None
    #: The file's mtime as seen when it was read, where the backend knows it: a
    #: difference from the listing means it was modified, not that it rotted.
    mtime_ns: int | None = None


#: Location settings that address storage: when one of them changes, a copy's
#: files are other bytes, however alike their names, sizes and mtimes.  Settings
#: that only say how to reach or read it (timeouts, credentials, TLS files,
#: force_download, media, site) are left out: changing them moves no data.
ADDRESS_SETTINGS = ("root", "host", "port", "user", "url", "bucket", "endpoint_url",
                    "prefix")


class Backend(abc.ABC):
    """A read-only view of one inventory location."""

    #: The inventory ``kind`` this backend serves.
    kind: ClassVar[str]
    #: True when an entry's ``ident`` names the physical storage of its bytes
    #: (device and inode): two copies listing one ident share those bytes (hard
    #: links), and count as one copy.  An ETag is not such an ident.
    ident_is_storage: ClassVar[bool] = False
    #: True when ``walk`` yields entries in the byte order of their paths
    #: (``os.fsencode``; a folder's contents therefore right where its name and a
    #: ``/`` sort), and a folder that could not be listed before anything that
    #: sorts after it.  The auditor then merges the walk with the catalog's
    #: rows as both stream; otherwise it sorts the listing first, in a
    #: temporary table (flat memory, one more write and read per entry).
    sorted_walk: ClassVar[bool] = False

    def __init__(self, name: str, location: Location) -> None:
        self.name = name
        self.location = location

    # -- life cycle --------------------------------------------------------
    def connect(self) -> None:
        """Reach and authenticate.  Raise :class:`LocationUnreachable` if not."""
        return None

    def close(self) -> None:
        """Release connections.  Safe to call more than once."""
        return None

    # -- what the backend can do ------------------------------------------
    def digest_algorithms(self) -> tuple[str, ...]:
        """Algorithms this location can report without reading the data
        (server-side digests).  The auditor adds them to the reference when it
        hashes the primary, so later audits can verify this copy cheaply."""
        return ()

    def default_workers(self) -> int:
        """How many files to hash at once when ``-j`` is not given: parallel
        transfers for a remote location (1), processes for a local one."""
        return 1

    def storage_identity(self, path: str, root: RootInfo) -> dict[str, str]:
        """What the copy at ``path`` (whose root ``stat_root`` returned ``root``)
        is stored on, as ``{fact: value}``.  The catalog keeps it with the copy;
        when it changes, nothing cached about the copy is trusted and every file
        is verified in full.  Never holds a secret (the report names the facts
        that changed).

        The default: the backend's kind, the settings in ``ADDRESS_SETTINGS``,
        the normalised copy path and the root's identity.  Backends add what they
        know of the storage itself (filesystem, host key, normalised endpoint)."""
        from ..urls import normal_path  # not needed by a local-only run

        settings = self.location.settings
        facts = {"kind": self.kind}
        for key in ADDRESS_SETTINGS:
            value = settings.get(key)
            if value is not None and value != "":
                facts[key] = str(value)
        facts["path"] = normal_path(path)
        if root.identity is not None:
            facts["resolved root"] = root.identity
        return facts

    # -- reading -----------------------------------------------------------
    @abc.abstractmethod
    def stat_root(self, path: str) -> RootInfo | None:
        """Return info about the copy root ``path``, or None if it does not exist.
        Raise :class:`LocationUnreachable` if the location itself is absent and
        :class:`NotAFolder` if ``path`` is a file."""

    @abc.abstractmethod
    def walk(self, path: str) -> Iterator[Entry | WalkProblem]:
        """Yield every non-directory entry below ``path``, recursing into
        directories but never following symlinks, in a stable order (each
        folder sorted; the auditor sorts what it reports)."""

    def list_folder(self, path: str) -> FolderListing | None:
        """One level of the folder ``path`` below the location's root (``""``:
        the root itself), or None when it does not exist.  Collections find
        their datasets and coverage finds undeclared folders with it.  Raise
        :class:`LocationUnreachable` if the location is absent and
        :class:`CopyFailed` if the folder cannot be listed."""
        raise CopyFailed(f"{self.kind} locations cannot be listed folder by folder")

    @abc.abstractmethod
    def open_read(self, path: str, relpath: str) -> BinaryIO:
        """Open ``relpath`` below the copy root ``path`` for reading."""

    @abc.abstractmethod
    def hash_files(
        self,
        path: str,
        entries: Sequence[Entry],
        algorithms: Sequence[str],
        *,
        workers: int = 1,
        force_full: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Iterator[HashResult]:
        """Establish the content of ``entries`` (all ``EntryKind.FILE``).

        Every result carries at least the first of ``algorithms`` it can
        provide; when the backend can only offer a server-side digest, it returns
        that digest if it is among ``algorithms``, and otherwise reads the data.
        ``force_full`` forbids server-side digests: the bytes must be read.
        Results may come in any order; there is exactly one per entry.
        """

    def hash_stream(
        self,
        path: str,
        entries: Iterable[Entry],
        algorithms: Sequence[str],
        *,
        workers: int = 1,
        force_full: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Iterator[HashResult]:
        """``hash_files`` over any number of entries, taken from ``entries`` as
        they are needed: the auditor hands over a whole copy's files as its
        comparison finds them.  Here, lists of ``STREAM_CHUNK`` at a time; a
        backend that can keep reading across them (local worker processes)
        takes them one by one instead, so the walk, the comparison and the
        hashing overlap and no worker waits between lists."""
        batch: list[Entry] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) >= STREAM_CHUNK:
                yield from self.hash_files(path, batch, algorithms, workers=workers,
                                           force_full=force_full, progress=progress)
                batch = []
        if batch:
            yield from self.hash_files(path, batch, algorithms, workers=workers,
                                       force_full=force_full, progress=progress)
