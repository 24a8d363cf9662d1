"""Local disks and NAS mounts.

Read-only by construction: files are opened ``O_RDONLY | O_NOFOLLOW |
O_NONBLOCK`` (plus ``O_NOATIME`` where the kernel allows), checked to be regular
files before a byte is read, and nothing is ever created, renamed or touched.
Every file is opened relative to its folder's descriptor, and every folder
relative to its parent's, none through a symlink (see folders.py): nothing
outside the copy is ever read, whatever is swapped while the audit runs.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO, NamedTuple

from ..checksums import open_readonly
from ..events import ProgressCallback
from ..inventory import Location
from .errors import CopyFailed, LocationUnreachable, NotAFolder
from .folders import FolderChain, open_root, split
from .hashpool import BATCH_FILES, MIN_BYTES, MIN_FILES, HashPool, RootChanged
from .interface import Backend, HashRequest, HashResult
from .listed import NO_DIGESTS, Entry, EntryKind, FolderListing, RootInfo, WalkProblem
from .localhash import Buffers, FileTask, describe_os_error, hash_tasks


class LocalBackend(Backend):
    kind = "local"
    #: Entries' idents are "device:inode": two copies listing one share its bytes.
    ident_is_storage = True
    #: The walk yields paths in byte order (each folder's names sorted as bytes).
    sorted_walk = True
    #: Worker processes take a copy's files as they need them.
    streams_entries = True

    def __init__(self, name: str, location: Location) -> None:
        super().__init__(name, location)
        #: copy path -> (st_dev, st_ino) of its root when it was listed
        self._roots: dict[str, tuple[int, int]] = {}
        self._pool: HashPool | None = None

    def _location_root(self) -> str:
        root = self.location.root
        if not os.path.isdir(root):
            raise LocationUnreachable(
                f"location root {root} does not exist or is not a directory "
                "(an unmounted disk?)")
        return root

    def full_path(self, path: str) -> str:
        return os.path.join(self.location.root, path.strip("/")) if path.strip("/") \
            else self.location.root

    def connect(self) -> None:
        self._location_root()

    def stat_root(self, path: str) -> RootInfo | None:
        self._location_root()
        full = self.full_path(path)
        try:
            st = os.stat(full)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CopyFailed(f"cannot stat {full}: {describe_os_error(exc)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise NotAFolder(f"{full} is a file, not a folder")
        return RootInfo(identity=f"local:{st.st_dev}:{st.st_ino}")

    def storage_identity(self, path: str, root: RootInfo) -> dict[str, str]:
        """The copy's folder with symlinks resolved, and the filesystem it is on:
        its ``f_fsid`` (from the filesystem's UUID on ext4, XFS and btrfs, so it
        survives a remount or a disk plugged in elsewhere), else the device."""
        full = self.full_path(path)
        try:
            fsid = os.statvfs(full).f_fsid
            device = os.stat(full).st_dev
        except OSError as exc:
            raise CopyFailed(f"cannot stat {full}: {describe_os_error(exc)}") from None
        return {"kind": self.kind, "folder": os.path.realpath(full),
                "filesystem": f"fsid {fsid:x}" if fsid else f"device {device}"}

    def walk(self, path: str) -> Iterator[Entry | WalkProblem]:
        """Every entry in the byte order of its path (see ``sorted_walk``): a
        folder's entries sorted by name, each subfolder walked where its name
        and a ``/`` sort.  Iterative (no generator per level: a nested ``yield
        from`` costs every file a hop per level).  Every folder is opened
        relative to its parent (see folders.py)."""
        try:
            root_fd, root_stat = open_root(self.full_path(path))
        except OSError as exc:
            yield WalkProblem("", describe_os_error(exc))
            return
        self._roots[path] = (root_stat.st_dev, root_stat.st_ino)
        chain = FolderChain(root_fd, listing=True)
        try:
            yield from _walk(chain, (root_stat.st_dev, root_stat.st_ino))
        finally:
            chain.close()
            os.close(root_fd)

    def list_folder(self, path: str) -> FolderListing | None:
        """The folder's own path may go through symlinks, like a copy's root;
        what it holds is read from its descriptor, and nothing in it is followed."""
        self._location_root()
        full = self.full_path(path)
        try:
            fd, _st = open_root(full)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise CopyFailed(f"{full} is not a directory") from None
        except OSError as exc:
            raise CopyFailed(f"cannot list {full}: {describe_os_error(exc)}") from None
        folders: list[str] = []
        entries: list[Entry] = []
        try:
            with os.scandir(fd) as scan:
                for item in sorted(scan, key=_entry_name):
                    if item.is_dir(follow_symlinks=False):
                        folders.append(item.name)
                    elif item.is_symlink():
                        entries.append(Entry(item.name, EntryKind.SYMLINK))
                    else:
                        st = item.stat(follow_symlinks=False)
                        kind = EntryKind.FILE if stat.S_ISREG(st.st_mode) else EntryKind.SPECIAL
                        entries.append(Entry(item.name, kind, st.st_size if kind is
                                             EntryKind.FILE else 0, st.st_mtime_ns))
        except OSError as exc:
            raise CopyFailed(f"cannot list {full}: {describe_os_error(exc)}") from None
        finally:
            os.close(fd)
        return FolderListing(tuple(folders), tuple(entries))

    def _open_copy_root(self, path: str) -> int:
        """The copy's root, checked to be the folder that was listed: if the
        root itself (or a link above it) now leads elsewhere, nothing is read."""
        fd, st = open_root(self.full_path(path))
        listed = self._roots.setdefault(path, (st.st_dev, st.st_ino))
        if listed != (st.st_dev, st.st_ino):
            os.close(fd)
            raise CopyFailed(f"{self.full_path(path)} is no longer the folder that was "
                             "listed (replaced or remounted during the audit)")
        return fd

    def open_read(self, path: str, relpath: str) -> BinaryIO:
        root_fd = self._open_copy_root(path)
        chain = FolderChain(root_fd)
        try:
            folder, name = split(relpath)
            fd = open_readonly(name, chain.enter(folder))
        finally:
            chain.close()
            os.close(root_fd)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def default_workers(self) -> int:
        """One hashing process per CPU this process may run on (at most 64, as
        ``-j`` allows)."""
        return min(usable_cpus(), self.max_workers)

    def _hash(self, path: str, entries: Iterable[Entry], request: HashRequest
              ) -> Iterator[HashResult]:
        """Hash in worker processes (hashpool.py) when ``workers`` > 1 and the job
        is large enough to pay for them; otherwise here, with the same loop.
        Entries are taken as the workers need them: the walk that yields them
        goes on while the first files are read."""
        try:
            root_fd = self._open_copy_root(path)
        except OSError as exc:
            raise CopyFailed(f"cannot open {self.full_path(path)}: "
                             f"{describe_os_error(exc)}") from None
        tasks: Iterator[FileTask] = ((e.path, e.size, e.mtime_ns, e.ident) for e in entries)
        try:
            head = _head(tasks)
            pool = self._pool_for(request.workers, head)
            if pool is None:
                yield from _hash_here(root_fd, itertools.chain(head, tasks),
                                      request.algorithms, request.progress)
                return
            root_id = self._roots[path]
            try:
                for task, (_index, digests, size, error) in pool.hash(
                        self.full_path(path), root_id, itertools.chain(head, tasks),
                        request.algorithms, request.progress):
                    yield HashResult(task[0], digests or {}, size, error)
            except RootChanged as exc:
                raise CopyFailed(str(exc)) from None
        finally:
            os.close(root_fd)

    def _pool_for(self, workers: int, tasks: Sequence[FileTask]) -> HashPool | None:
        """The worker processes to use, started if needed, or None to hash here."""
        if workers <= 1:
            return None
        if self._pool is not None and self._pool.size != workers:
            self._pool.close()
            self._pool = None
        if self._pool is None:
            if not HashPool.worth_it(tasks):
                return None
            self._pool = HashPool(workers)
        if not self._pool.running:
            try:
                self._pool.hash_ready()
            except OSError:
                return None  # no process could be forked: hash here
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class _Folder(NamedTuple):
    """A subfolder still to walk: its names below the root, and its path with a
    trailing ``/`` (the prefix of its entries' paths)."""

    parts: tuple[str, ...]
    prefix: str


#: A folder's item, ready to be yielded in order: (its sort key, what to yield or
#: the subfolder to walk).  Keys are unique in a folder, so sorting the pairs
#: never compares the second members.
_Item = tuple["str | bytes", "Entry | WalkProblem | _Folder"]


def _walk(chain: FolderChain, top: tuple[int, int]) -> Iterator[Entry | WalkProblem]:
    """Depth first, each folder's items in the byte order of their names (a
    subfolder's name with ``/``): the paths come out in byte order, which lets
    the auditor merge the walk with the catalog's sorted rows."""
    visited = {top}
    first = _list_folder(chain, _Folder((), ""), visited)
    if isinstance(first, WalkProblem):
        yield first
        return
    stack = [iter(first)]
    while stack:
        for _key, item in stack[-1]:
            if not isinstance(item, _Folder):
                yield item
                continue
            listed = _list_folder(chain, item, visited)
            if isinstance(listed, WalkProblem):
                yield listed
                continue
            stack.append(iter(listed))
            break
        else:
            stack.pop()


def _list_folder(chain: FolderChain, folder: _Folder, visited: set[tuple[int, int]]
                 ) -> list[_Item] | WalkProblem:
    """The folder's items sorted.  Everything is stat'ed now, while the chain
    holds this folder's descriptor (the scandir entries stat relative to it)."""
    prefix = folder.prefix
    try:
        with os.scandir(chain.enter(folder.parts)) as scan:
            found = list(scan)
    except OSError as exc:
        return WalkProblem(prefix.rstrip("/"), describe_os_error(exc))
    items: list[_Item] = []
    append = items.append
    plain = True  # every name ASCII: code point order is byte order
    is_regular, is_link = stat.S_ISREG, stat.S_ISLNK
    # Hot loop (once per file): Entry made by tuple.__new__ (a NamedTuple's own
    # __new__ is a Python call), the ident's device part formatted once.
    new, file_kind = tuple.__new__, _FILE
    device, device_text = -1, ""
    for entry in found:
        name = entry.name
        rel = prefix + name
        if plain and not name.isascii():
            plain = False
        try:
            # One fstatat per entry: it tells files from symlinks and folders
            # (is_dir()/is_symlink() on an entry of a descriptor-based scandir
            # may cost a syscall of its own).
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # vanished between listing and stat: not there
        except OSError as exc:
            append((name, WalkProblem(rel, describe_os_error(exc))))
            continue
        mode = st.st_mode
        if is_regular(mode):
            if st.st_dev != device:
                device = st.st_dev
                device_text = f"{device}:"
            append((name, new(Entry, (rel, file_kind, st.st_size, st.st_mtime_ns,
                                      device_text + str(st.st_ino), NO_DIGESTS,
                                      st.st_nlink))))
        elif stat.S_ISDIR(mode):
            key = (st.st_dev, st.st_ino)
            if key in visited:  # a bind mount of a folder already walked: a loop
                append((name + "/", WalkProblem(rel, "folder already walked (a bind "
                                                     "mount loop)")))
                continue
            visited.add(key)
            append((name + "/", _Folder((*folder.parts, name), rel + "/")))
        elif is_link(mode):
            append((name, Entry(rel, _SYMLINK)))
        else:
            append((name, Entry(rel, _SPECIAL, 0, st.st_mtime_ns)))
    if not plain:
        items = [(os.fsencode(key), item) for key, item in items]
    items.sort()
    return items


_FILE, _SYMLINK, _SPECIAL = EntryKind.FILE, EntryKind.SYMLINK, EntryKind.SPECIAL


def _head(tasks: Iterator[FileTask]) -> list[FileTask]:
    """The first tasks, as many as tell whether the job pays for worker
    processes (HashPool.worth_it)."""
    head: list[FileTask] = []
    size = 0
    for task in tasks:
        head.append(task)
        size += task[1]
        if len(head) >= MIN_FILES or (len(head) > 1 and size >= MIN_BYTES):
            break
    return head


def _hash_here(root_fd: int, tasks: Iterable[FileTask], algorithms: Sequence[str],
               progress: ProgressCallback | None) -> Iterator[HashResult]:
    buffers = Buffers()
    batch: list[FileTask] = []
    for task in itertools.chain(tasks, (None,)):
        if task is not None:
            batch.append(task)
            if len(batch) < BATCH_FILES:
                continue
        for index, digests, size, error in hash_tasks(root_fd, batch, algorithms, buffers):
            if error is None and progress:
                progress(1, size)
            yield HashResult(batch[index][0], digests or {}, size, error)
        batch = []


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name
