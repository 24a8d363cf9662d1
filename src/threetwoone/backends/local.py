"""Local disks and NAS mounts.

Read-only by construction: files are opened ``O_RDONLY | O_NOFOLLOW |
O_NONBLOCK`` (plus ``O_NOATIME`` where the kernel allows), checked to be regular
files before a byte is read, and nothing is ever created, renamed or touched.
Every file is opened relative to its folder's descriptor, and every folder
relative to its parent's, none through a symlink (see folders.py): nothing
outside the copy is ever read, whatever is swapped while the audit runs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ..checksums import open_readonly
from ..inventory import Location
from .folders import FolderChain, open_root, split
from .hashpool import HashPool, RootChanged
from .interface import (
    NO_DIGESTS,
    Backend,
    CopyFailed,
    Entry,
    EntryKind,
    HashResult,
    LocationUnreachable,
    NotAFolder,
    ProgressCallback,
    RootInfo,
    WalkProblem,
)
from .localhash import Buffers, FileTask, describe_os_error, hash_tasks


class LocalBackend(Backend):
    kind = "local"
    #: Entries' idents are "device:inode": two copies listing one share its bytes.
    ident_is_storage = True

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
        is_regular, is_link = stat.S_ISREG, stat.S_ISLNK
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
                    # One fstatat tells files from symlinks (is_symlink() on an
                    # entry of a descriptor-based scandir costs a syscall of its own).
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished between listing and stat: not there
                except OSError as exc:
                    yield WalkProblem(rel, describe_os_error(exc))
                    continue
                mode = st.st_mode
                if is_regular(mode):
                    yield Entry(rel, file_kind, st.st_size, st.st_mtime_ns,
                                f"{st.st_dev}:{st.st_ino}", NO_DIGESTS, st.st_nlink)
                elif is_link(mode):
                    yield Entry(rel, symlink_kind)
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

    def default_workers(self) -> int:
        """One hashing process per CPU this process may run on (at most 64, as
        ``-j`` allows)."""
        return min(usable_cpus(), 64)

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
        """Hash in worker processes (hashpool.py) when ``workers`` > 1 and the job
        is large enough to pay for them; otherwise here, with the same loop."""
        try:
            root_fd = self._open_copy_root(path)
        except OSError as exc:
            raise CopyFailed(f"cannot open {self.full_path(path)}: "
                             f"{describe_os_error(exc)}") from None
        tasks = [(e.path, e.size, e.mtime_ns, e.ident) for e in entries]
        try:
            pool = self._pool_for(workers, tasks)
            if pool is None:
                yield from _hash_here(root_fd, tasks, algorithms, progress)
                return
            root_id = self._roots[path]
            try:
                for task, (_index, digests, size, error) in pool.hash(
                        self.full_path(path), root_id, tasks, algorithms, progress):
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


def _hash_here(root_fd: int, tasks: Sequence[FileTask], algorithms: Sequence[str],
               progress: ProgressCallback | None) -> Iterator[HashResult]:
    for index, digests, size, error in hash_tasks(root_fd, tasks, algorithms, Buffers()):
        if error is None and progress:
            progress(1, size)
        yield HashResult(tasks[index][0], digests or {}, size, error)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name



