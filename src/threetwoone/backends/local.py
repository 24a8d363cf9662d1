"""Local disks and NAS mounts.

Read-only by construction: files are opened ``O_RDONLY | O_NOFOLLOW |
O_NONBLOCK`` (plus ``O_NOATIME`` where the kernel allows), checked to be regular
files before a byte is read, and nothing is ever created, renamed or touched.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import BinaryIO

from ..checksums import BUFFER_SIZE, FileChanged, NotRegularFile, hash_fd, open_readonly
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

#: A worker takes files in batches of about this many bytes (or BATCH_FILES
#: files): one task per small file costs more in scheduling than it hashes.
BATCH_BYTES = 32 * 1024 * 1024
BATCH_FILES = 256


def describe_os_error(exc: OSError) -> str:
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)


class LocalBackend(Backend):
    kind = "local"

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
        top = self.full_path(path)
        try:
            top_stat = os.stat(top)
        except OSError as exc:
            yield WalkProblem("", describe_os_error(exc))
            return
        yield from self._walk_dir(top, "", {(top_stat.st_dev, top_stat.st_ino)})

    def _walk_dir(self, folder: str, prefix: str,
                  ancestors: set[tuple[int, int]]) -> Iterator[Entry | WalkProblem]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            yield WalkProblem(prefix.rstrip("/"), describe_os_error(exc))
            return
        for item in entries:
            rel = prefix + item.name
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished between listing and stat: not there
            except OSError as exc:
                yield WalkProblem(rel, describe_os_error(exc))
                continue
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:  # a bind mount of an ancestor: a loop
                    yield WalkProblem(rel, "directory loop (bind mount of a parent folder)")
                    continue
                ancestors.add(key)
                yield from self._walk_dir(item.path, rel + "/", ancestors)
                ancestors.discard(key)
            elif stat.S_ISREG(mode):
                yield Entry(rel, EntryKind.FILE, st.st_size, st.st_mtime_ns,
                            f"{st.st_dev}:{st.st_ino}")
            elif stat.S_ISLNK(mode):
                yield Entry(rel, EntryKind.SYMLINK, 0, st.st_mtime_ns)
            else:
                yield Entry(rel, EntryKind.SPECIAL, 0, st.st_mtime_ns)

    def open_read(self, path: str, relpath: str) -> BinaryIO:
        fd = open_readonly(os.path.join(self.full_path(path), relpath))
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
        top = self.full_path(path)
        if workers <= 1 or len(entries) < 2:
            yield from self._hash_batch(top, entries, algorithms, progress)
            return
        yield from self._hash_parallel(top, entries, algorithms, workers, progress)

    def _hash_parallel(self, top: str, entries: Sequence[Entry], algorithms: Sequence[str],
                       workers: int, progress: ProgressCallback | None
                       ) -> Iterator[HashResult]:
        # Bounded in flight, so a million-file copy does not queue a million futures.
        batches = iter(_batches(entries))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
            running: set[Future[list[HashResult]]] = set()

            def submit_next() -> bool:
                batch = next(batches, None)
                if batch is None:
                    return False
                running.add(pool.submit(_hash_batch_list, top, batch, algorithms, progress))
                return True

            for _ in range(workers * 2):
                if not submit_next():
                    break
            while running:
                done, _pending = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.discard(future)
                    yield from future.result()
                    submit_next()

    @staticmethod
    def _hash_batch(top: str, entries: Sequence[Entry], algorithms: Sequence[str],
                    progress: ProgressCallback | None) -> Iterator[HashResult]:
        buffer = bytearray(BUFFER_SIZE)
        for entry in entries:
            full = os.path.join(top, entry.path)
            try:
                fd = open_readonly(full)
            except NotRegularFile:
                yield HashResult(entry.path, {}, error="no longer a regular file (not opened)")
                continue
            except OSError as exc:
                if exc.errno == 40:  # ELOOP: replaced by a symlink since the listing
                    detail = "replaced by a symlink while auditing (not followed)"
                else:
                    detail = describe_os_error(exc)
                yield HashResult(entry.path, {}, error=detail)
                continue
            try:
                os.set_blocking(fd, True)
                digests, size = hash_fd(fd, algorithms, buffer)
            except FileChanged:
                yield HashResult(entry.path, {}, error="changed while being read")
                continue
            except OSError as exc:
                yield HashResult(entry.path, {}, error=describe_os_error(exc))
                continue
            finally:
                os.close(fd)
            if progress:
                progress(1, size)
            yield HashResult(entry.path, digests, size=size, method="full")


def _hash_batch_list(top: str, entries: Sequence[Entry], algorithms: Sequence[str],
                     progress: ProgressCallback | None) -> list[HashResult]:
    return list(LocalBackend._hash_batch(top, entries, algorithms, progress))


def _batches(entries: Sequence[Entry]) -> Iterator[list[Entry]]:
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        batch.append(entry)
        size += entry.size
        if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
