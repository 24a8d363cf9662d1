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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, Literal, NamedTuple

from ..events import ProgressCallback
from ..inventory import Location
from .errors import BackendError as BackendError
from .errors import CopyFailed as CopyFailed
from .errors import LocationUnreachable as LocationUnreachable
from .errors import NotAFolder as NotAFolder
from .listed import NO_DIGESTS as NO_DIGESTS
from .listed import Entry as Entry
from .listed import EntryKind as EntryKind
from .listed import FolderListing as FolderListing
from .listed import RootInfo as RootInfo
from .listed import WalkProblem as WalkProblem

#: Files ``Backend.hash_files`` hands a backend at a time from an iterable: bounds memory.
STREAM_CHUNK = 2000

#: The most files any backend hashes at once (``-j`` allows as many).
MAX_WORKERS = 64


#: How a file's content was established: its bytes read and hashed (here or on
#: the storage host), or a checksum the server keeps trusted.
HashMethod = Literal["full", "digest"]


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
    method: HashMethod = "full"
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


@dataclass(frozen=True)
class HashRequest:
    """What one ``hash_files`` call asks, as the backend's primitives get it."""

    algorithms: tuple[str, ...]
    #: The bytes must be read: ``force_full``, or the location's ``force_download``.
    full: bool
    #: Files hashed at once: at least 1, at most the backend's ``max_workers``.
    workers: int
    progress: ProgressCallback | None = None

    def read(self, size: int) -> None:
        """``size`` more bytes read (by backends that say so as they read)."""
        if self.progress is not None and size:
            self.progress(0, size)

    def done(self, size: int) -> None:
        """One more file established, ``size`` bytes read for it (backends that
        dispatch their own batches)."""
        if self.progress is not None:
            self.progress(1, size)


class Backend(abc.ABC):
    """A read-only view of one inventory location.

    A backend implements the primitives (``stat_root``, ``walk``, ``open_read``,
    and either ``_hash_one``, one file at a time, or ``_hash``, all of a call's
    files); this class owns what is common: the ``force_download`` setting,
    dispatch of files to one worker or a bounded pool of threads, and progress
    for files hashed one at a time."""

    #: The inventory ``kind`` this backend serves.
    kind: ClassVar[str]
    #: Most files worth hashing at once (``-j`` beyond it adds nothing).
    max_workers: ClassVar[int] = MAX_WORKERS
    #: True when ``_hash_one`` reports bytes as it reads them (``HashRequest.read``);
    #: else a full read's bytes are reported when the file is done.
    reports_bytes: ClassVar[bool] = False
    #: True when ``hash_files`` takes its entries as they are needed (local
    #: worker processes), so ``hash_files`` hands them all over in one call.
    streams_entries: ClassVar[bool] = False
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
        #: ``force_download: true``: no server digest is ever trusted here.
        self.force_download = bool(location.settings.get("force_download", False))

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
        (server-side digests; none with ``force_download``).  The auditor adds
        them to the reference when it hashes the primary, so later audits can
        verify this copy cheaply."""
        return () if self.force_download else self._server_digests()

    def _server_digests(self) -> tuple[str, ...]:
        """The server-side digests of a backend that has some."""
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

    def hash_files(
        self,
        path: str,
        entries: Iterable[Entry],
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
        ``progress`` is called as work completes: (files finished, bytes read).

        ``entries`` may be any iterable, a whole copy's files taken as they are
        needed: a backend that can keep reading across them (local worker
        processes, ``streams_entries``) takes them one by one, so the walk, the
        comparison and the hashing overlap; the others get lists of
        ``STREAM_CHUNK`` at a time, which bounds memory.
        """
        request = HashRequest(tuple(algorithms), force_full or self.force_download,
                              max(1, min(workers, self.max_workers)), progress)
        if self.streams_entries or isinstance(entries, Sequence):
            yield from self._hash(path, entries, request)
            return
        batch: list[Entry] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) >= STREAM_CHUNK:
                yield from self._hash(path, batch, request)
                batch = []
        if batch:
            yield from self._hash(path, batch, request)

    def _hash(self, path: str, entries: Iterable[Entry], request: HashRequest
              ) -> Iterator[HashResult]:
        """All of a call's files: each on its own (``_hash_one``), here or on a
        bounded pool of threads.  Backends that hash in batches override this."""
        from .parallel import map_bounded

        todo = entries if isinstance(entries, Sequence) else list(entries)
        if not todo:
            return
        one = self._hasher(path, request)

        def counted(entry: Entry) -> HashResult:
            result = one(entry)
            if request.progress is not None and result.error is None:
                full_read = result.method == "full" and not self.reports_bytes
                request.progress(1, result.size if full_read else 0)
            return result

        if request.workers == 1 or len(todo) < 2:
            yield from map(counted, todo)
        else:
            yield from map_bounded(counted, todo, request.workers, f"{self.kind}-hash")

    def _hasher(self, path: str, request: HashRequest) -> Callable[[Entry], HashResult]:
        """What hashes one file of the copy ``path`` (safe to call from several
        threads at once); for backends that keep the default ``_hash``."""
        raise NotImplementedError(f"{type(self).__name__} hashes no single file")

