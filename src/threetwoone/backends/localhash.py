"""The per-file loop that hashes local files below a copy's root descriptor.

For each file: open it relative to its folder's descriptor (no symlink at any
component, see folders.py), check on the descriptor that it is a regular file
and still the file listed, read it through a reused buffer, check that size
and mtime did not move while reading, close.  Nothing else happens per file.

The loop runs in the auditing process for small jobs and in worker processes
(hashpool.py) for large ones, so it takes and returns plain tuples that cross
a pipe as they are.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator, Sequence

from ..checksums import (
    BUFFER_SIZE,
    LARGE_BUFFER_SIZE,
    FileChanged,
    NotRegularFile,
    hash_fd,
    open_regular,
)
from .folders import FolderChain, FolderReplaced

#: (path below the root, listed size, listed mtime_ns, listed ident)
FileTask = tuple[str, int, "int | None", "str | None"]
#: (index of the task in its batch, {algorithm: hex} or None, bytes read, error or None)
FileOutcome = tuple[int, "dict[str, str] | None", int, "str | None"]


class Buffers:
    """Read buffers reused from file to file: small files are read in one call
    into the small one; files larger than it use 1 MiB reads."""

    def __init__(self) -> None:
        self.small = bytearray(BUFFER_SIZE)
        self._large: bytearray | None = None

    def for_size(self, size: int) -> bytearray:
        if size <= BUFFER_SIZE:
            return self.small
        if self._large is None:
            self._large = bytearray(LARGE_BUFFER_SIZE)
        return self._large


def hash_tasks(root_fd: int, tasks: Sequence[FileTask], algorithms: Sequence[str],
               buffers: Buffers, between_reads: Callable[[int], None] | None = None
               ) -> Iterator[FileOutcome]:
    """Hash each task's file below ``root_fd``; one outcome per task, in order.
    ``between_reads`` is called after each 1 MiB read of a large file."""
    chain = FolderChain(root_fd)
    folder_fd = root_fd
    current: str | None = ""
    try:
        for index, (path, size, mtime_ns, ident) in enumerate(tasks):
            folder, _, name = path.rpartition("/")
            try:
                if folder != current:
                    current = None  # until entered: a failed enter may close folder_fd
                    folder_fd = chain.enter(folder.split("/") if folder else ())
                    current = folder
                fd, before = open_regular(name, folder_fd)
            except OSError as exc:
                yield index, None, 0, _open_error(exc)
                continue
            try:
                changed = differs_from_listing(before, size, mtime_ns, ident)
                if changed:
                    yield index, None, 0, changed
                    continue
                # O_NONBLOCK (set so a FIFO cannot hang the open) does nothing to
                # reads of a regular file: no need to clear it.
                large = before.st_size > BUFFER_SIZE
                digests, total = hash_fd(fd, algorithms, buffers.for_size(before.st_size),
                                         between_reads if large else None, before=before)
            except OSError as exc:  # FileChanged included: its message says how
                yield index, None, 0, (str(exc) if isinstance(exc, FileChanged)
                                       else describe_os_error(exc))
                continue
            finally:
                os.close(fd)
            yield index, digests, total, None
    finally:
        chain.close()


def differs_from_listing(st: os.stat_result, size: int, mtime_ns: int | None,
                         ident: str | None) -> str | None:
    """Why the file opened is not the file listed, or None.  A file cut short
    (or grown, or replaced) since the listing is unreadable tonight: hashing it
    would judge bytes that are not the listed file's as corruption."""
    if st.st_size != size:
        how = "shorter" if st.st_size < size else "longer"
        return f"{how} than listed ({st.st_size} bytes, listed {size})"
    if mtime_ns is not None and st.st_mtime_ns != mtime_ns:
        return "modified since it was listed"
    if ident is not None and ident != f"{st.st_dev}:{st.st_ino}":
        return "replaced since it was listed"
    return None


def _open_error(exc: OSError) -> str:
    if isinstance(exc, NotRegularFile):
        return "no longer a regular file (not opened)"
    if isinstance(exc, FolderReplaced):
        return exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:  # replaced by a symlink since the listing
        return "replaced by a symlink while auditing (not followed)"
    return describe_os_error(exc)


def describe_os_error(exc: OSError) -> str:
    return exc.strerror or str(exc)
