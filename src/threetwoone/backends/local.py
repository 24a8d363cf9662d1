"""Local disks and NAS mounts.

Read-only by construction: files are opened ``O_RDONLY | O_NOFOLLOW |
O_NONBLOCK`` (plus ``O_NOATIME`` where the kernel allows), checked to be regular
files before a byte is read, and nothing is ever created, renamed or touched.
Every file is opened relative to its folder's descriptor, and every folder
relative to its parent's, none through a symlink (see folders.py): nothing
outside the copy is ever read, whatever is swapped while the audit runs.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from functools import partial
from typing import BinaryIO

from ..checksums import (
    BUFFER_SIZE,
    LARGE_BUFFER_SIZE,
    FileChanged,
    NotRegularFile,
    hash_fd,
    open_readonly,
    open_regular,
)
from ..inventory import Location
from .folders import FolderChain, FolderReplaced, open_root, split
from .interface import (
    Backend,
    CopyFailed,
    Entry,
    EntryKind,
    HashResult,
    LocationUnreachable,
    ProgressCallback,
    RootInfo,
    WalkProblem,
)
from .parallel import batches, run_bounded

#: A worker takes files in batches of about this many bytes (or BATCH_FILES
#: files): one task per small file costs more in scheduling than it hashes.
BATCH_BYTES = 32 * 1024 * 1024
BATCH_FILES = 256


def describe_os_error(exc: OSError) -> str:
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, name: str, location: Location) -> None:
        super().__init__(name, location)
        #: copy path -> (st_dev, st_ino) of its root when it was listed
        self._roots: dict[str, tuple[int, int]] = {}

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
            raise CopyFailed(f"{full} is not a directory")
        return RootInfo(identity=f"local:{st.st_dev}:{st.st_ino}")

    def walk(self, path: str) -> Iterator[Entry | WalkProblem]:
        """Each folder's entries sorted by name; its files first, then its
        subfolders.  Iterative (no generator per level: a nested ``yield from``
        costs every file a hop per level).  Only the files' inodes are stat'ed;
        folders and symlinks are known from the directory entry itself.  Every
        folder is opened relative to its parent (see folders.py)."""
        try:
            root_fd, root_stat = open_root(self.full_path(path))
        except OSError as exc:
            yield WalkProblem("", describe_os_error(exc))
            return
        self._roots[path] = (root_stat.st_dev, root_stat.st_ino)
        chain = FolderChain(root_fd, listing=True)
        try:
            yield from self._walk(chain, (root_stat.st_dev, root_stat.st_ino))
        finally:
            chain.close()
            os.close(root_fd)

    @staticmethod
    def _walk(chain: FolderChain, top: tuple[int, int]) -> Iterator[Entry | WalkProblem]:
        visited = {top}
        stack: list[tuple[tuple[str, ...], str]] = [((), "")]
        file_kind, symlink_kind, special_kind = EntryKind.FILE, EntryKind.SYMLINK, \
            EntryKind.SPECIAL
        while stack:
            parts, prefix = stack.pop()
            try:
                with os.scandir(chain.enter(parts)) as scan:
                    items = sorted(scan, key=_name)
            except OSError as exc:
                yield WalkProblem(prefix.rstrip("/"), describe_os_error(exc))
                continue
            subfolders = []
            for item in items:
                rel = prefix + item.name
                try:
                    if item.is_dir(follow_symlinks=False):
                        subfolders.append((item, rel))
                        continue
                    if item.is_symlink():
                        yield Entry(rel, symlink_kind)
                        continue
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished between listing and stat: not there
                except OSError as exc:
                    yield WalkProblem(rel, describe_os_error(exc))
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield Entry(rel, file_kind, st.st_size, st.st_mtime_ns,
                                f"{st.st_dev}:{st.st_ino}")
                else:
                    yield Entry(rel, special_kind, 0, st.st_mtime_ns)
            for item, rel in reversed(subfolders):
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError as exc:
                    yield WalkProblem(rel, describe_os_error(exc))
                    continue
                key = (st.st_dev, st.st_ino)
                if key in visited:  # a bind mount of a folder already walked: a loop
                    yield WalkProblem(rel, "folder already walked (a bind mount loop)")
                    continue
                visited.add(key)
                stack.append(((*parts, item.name), rel + "/"))

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
        try:
            root_fd = self._open_copy_root(path)
        except OSError as exc:
            raise CopyFailed(f"cannot open {self.full_path(path)}: "
                             f"{describe_os_error(exc)}") from None
        try:
            if workers <= 1 or len(entries) < 2:
                yield from _hash_batch(root_fd, entries, algorithms, progress)
                return
            tasks = (partial(_hash_batch_list, root_fd, batch, algorithms, progress)
                     for batch in batches(entries, BATCH_BYTES, BATCH_FILES))
            yield from run_bounded(tasks, workers, "hash")
        finally:
            os.close(root_fd)


def _hash_batch(root_fd: int, entries: Sequence[Entry], algorithms: Sequence[str],
                progress: ProgressCallback | None) -> Iterator[HashResult]:
    small, large = bytearray(BUFFER_SIZE), None
    chain = FolderChain(root_fd)
    try:
        for entry in entries:
            try:
                folder, name = split(entry.path)
                fd, before = open_regular(name, chain.enter(folder))
            except NotRegularFile:
                yield HashResult(entry.path, {}, error="no longer a regular file (not opened)")
                continue
            except FolderReplaced as exc:
                yield HashResult(entry.path, {}, error=exc.strerror)
                continue
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # replaced by a symlink since the listing
                    detail = "replaced by a symlink while auditing (not followed)"
                else:
                    detail = describe_os_error(exc)
                yield HashResult(entry.path, {}, error=detail)
                continue
            try:
                changed = differs_from_listing(entry, before)
                if changed:
                    yield HashResult(entry.path, {}, error=changed)
                    continue
                # O_NONBLOCK (set so a FIFO cannot hang the open) does nothing to
                # reads of a regular file: no need to clear it.
                buffer = small
                if before.st_size > BUFFER_SIZE:
                    large = large or bytearray(LARGE_BUFFER_SIZE)
                    buffer = large
                digests, size = hash_fd(fd, algorithms, buffer, before=before)
            except FileChanged as exc:
                yield HashResult(entry.path, {}, error=str(exc))
                continue
            except OSError as exc:
                yield HashResult(entry.path, {}, error=describe_os_error(exc))
                continue
            finally:
                os.close(fd)
            if progress:
                progress(1, size)
            yield HashResult(entry.path, digests, size=size, method="full")
    finally:
        chain.close()


def differs_from_listing(entry: Entry, st: os.stat_result) -> str | None:
    """Why the file opened is not the file listed, or None.  A file cut short
    (or grown, or replaced) since the listing is unreadable tonight: hashing it
    would judge bytes that are not the listed file's as corruption."""
    if st.st_size != entry.size:
        how = "shorter" if st.st_size < entry.size else "longer"
        return f"{how} than listed ({st.st_size} bytes, listed {entry.size})"
    if entry.mtime_ns is not None and st.st_mtime_ns != entry.mtime_ns:
        return "modified since it was listed"
    if entry.ident is not None and entry.ident != f"{st.st_dev}:{st.st_ino}":
        return "replaced since it was listed"
    return None


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _hash_batch_list(root_fd: int, entries: Sequence[Entry], algorithms: Sequence[str],
                     progress: ProgressCallback | None) -> list[HashResult]:
    return list(_hash_batch(root_fd, entries, algorithms, progress))
