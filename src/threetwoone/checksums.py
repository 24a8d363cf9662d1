"""Streaming hashers: every requested algorithm fed from one read pass.

Algorithm names used throughout threetwoone (reports, catalog, backends):
``xxh3_128`` (default; equals ``xxhsum -H2`` / XXH128), ``md5``, ``sha1``,
``sha224``, ``sha256``, ``sha384``, ``sha512`` (every algorithm a producer manifest
or a BagIt bag may use), ``adler32`` (dCache's default), ``crc32``.  Servers may
also report ``crc32c`` and ``crc64nvme`` (S3), which are never computed here.
Digests are lowercase hex strings; adler32/crc32 as 8 hex digits, big-endian,
as dCache and RFC 3230 write them.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import xxhash

DEFAULT_ALGORITHM = "xxh3_128"

#: Checksums that show a change but never prove content intact: 32-bit (and
#: CRC-64) sums are linear, so adjusting a few bytes keeps them (a +1, -2, +1 on
#: three neighbouring bytes keeps adler32).  A server that offers only these gets
#: its files downloaded to verify them.
WEAK_ALGORITHMS = frozenset({"adler32", "crc32", "crc32c", "crc64nvme"})


def is_weak(algorithms: Iterable[str]) -> bool:
    """True when none of ``algorithms`` is a strong one (or there are none)."""
    return all(a in WEAK_ALGORITHMS for a in algorithms)

#: Read buffers, reused between files.  Measured on the 2-core CI machine
#: (benchmarks/): small files are read in one 128 KiB call; for a 2 GiB file
#: 1 MiB reads hash at 13 GB/s against 9.5 GB/s with 128 KiB (fewer syscalls and
#: Python iterations), while buffers above 1 MiB gain nothing.
BUFFER_SIZE = 128 * 1024
LARGE_BUFFER_SIZE = 1024 * 1024


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


class _Adler32:
    """zlib.adler32 behind the hashlib interface."""

    def __init__(self) -> None:
        self.value = 1

    def update(self, data: bytes | memoryview, /) -> None:
        self.value = zlib.adler32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | memoryview, /) -> None:
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def _from_hashlib(name: str) -> Callable[[], Hasher]:
    """A hashlib constructor, imported when first called: hashlib loads OpenSSL
    (a few milliseconds), which a run on the default xxh3_128 never needs."""
    def make() -> Hasher:
        import hashlib

        hasher: Hasher = getattr(hashlib, name)()
        return hasher
    make.__name__ = name
    return make


FACTORIES: dict[str, Callable[[], Hasher]] = {
    "xxh3_128": xxhash.xxh3_128,
    "md5": _from_hashlib("md5"),
    "sha1": _from_hashlib("sha1"),
    "sha224": _from_hashlib("sha224"),
    "sha256": _from_hashlib("sha256"),
    "sha384": _from_hashlib("sha384"),
    "sha512": _from_hashlib("sha512"),
    "adler32": _Adler32,
    "crc32": _Crc32,
}

ALGORITHMS = tuple(FACTORIES)


def new_hashers(algorithms: Iterable[str]) -> dict[str, Hasher]:
    return {name: FACTORIES[name]() for name in algorithms}


class FileChanged(OSError):
    """The file changed while it was being read; its digest means nothing."""


class NotRegularFile(OSError):
    """The path is (now) a FIFO, socket, device, directory or symlink."""


#: Read-only, no symlink followed, no blocking on a FIFO opened by mistake.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))
#: Plus no atime update: needs the file's owner or CAP_FOWNER.
_NOATIME_FLAGS = _OPEN_FLAGS | getattr(os, "O_NOATIME", 0)


def open_regular(path: str | bytes, dir_fd: int | None = None) -> tuple[int, os.stat_result]:
    """Open a regular file read-only without following a symlink, without
    blocking on a FIFO and, where the kernel allows it, without touching atime.
    Return the descriptor and its stat; raise NotRegularFile for anything that is
    not a regular file (checked on the open descriptor: no race with a swap)."""
    try:
        fd = os.open(path, _NOATIME_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        # O_NOATIME needs file ownership (or CAP_FOWNER); retry without it.
        fd = os.open(path, _OPEN_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(f"not a regular file: {os.fsdecode(path)!r}")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_readonly(path: str | bytes, dir_fd: int | None = None) -> int:
    """``open_regular`` without the stat."""
    return open_regular(path, dir_fd)[0]


def hash_fd(fd: int, algorithms: Sequence[str], buffer: bytearray,
            on_bytes: Callable[[int], None] | None = None,
            before: os.stat_result | None = None) -> tuple[dict[str, str], int]:
    """Hash an open file descriptor with every algorithm in one pass.

    ``buffer`` is reused between files (no allocation per read).  ``before`` is
    the descriptor's stat when the caller already has it.  Raise FileChanged when
    the size or mtime moved while reading, or the bytes read are not the size
    at open."""
    if before is None:
        before = os.fstat(fd)
    hashers = [FACTORIES[name]() for name in algorithms]
    view = memoryview(buffer)
    room = len(view)
    size = before.st_size
    total = 0
    readinto = _readinto
    # A read that stops short of the buffer exactly at the size at open is the
    # end: no read for the end of file.  A file that grew meanwhile shows in the
    # fstat below; a size of 0 still reads once.
    if len(hashers) == 1:
        update = hashers[0].update
        while True:
            count = readinto(fd, view)
            if not count:
                break
            update(view[:count])
            total += count
            if on_bytes:
                on_bytes(count)
            if total == size and count < room:
                break
    else:
        while True:
            count = readinto(fd, view)
            if not count:
                break
            chunk = view[:count]
            for hasher in hashers:
                hasher.update(chunk)
            total += count
            if on_bytes:
                on_bytes(count)
            if total == size and count < room:
                break
    after = os.fstat(fd)
    if after.st_size != before.st_size or after.st_mtime_ns != before.st_mtime_ns:
        raise FileChanged("changed while being read")
    if total != before.st_size:
        # Same size and mtime, yet not that many bytes: a read that ended early
        # (or ran on) is a failed read, never content to judge.
        raise FileChanged(f"read {total} bytes of {before.st_size} "
                          f"({'shorter' if total < before.st_size else 'longer'} than at open)")
    return {name: h.hexdigest() for name, h in zip(algorithms, hashers, strict=True)}, total


def _readinto(fd: int, view: memoryview) -> int:
    return os.readv(fd, [view])


def hash_stream(read: Callable[[int], bytes], algorithms: Sequence[str],
                on_bytes: Callable[[int], None] | None = None) -> tuple[dict[str, str], int]:
    """Hash a byte stream (a network response, an SFTP file) with every
    algorithm in one pass."""
    hashers = [FACTORIES[name]() for name in algorithms]
    total = 0
    while True:
        chunk = read(BUFFER_SIZE * 8)
        if not chunk:
            break
        for hasher in hashers:
            hasher.update(chunk)
        total += len(chunk)
        if on_bytes:
            on_bytes(len(chunk))
    return {name: h.hexdigest() for name, h in zip(algorithms, hashers, strict=True)}, total


def hash_bytes(data: bytes, algorithms: Sequence[str]) -> dict[str, str]:
    out = {}
    for name in algorithms:
        hasher = FACTORIES[name]()
        hasher.update(data)
        out[name] = hasher.hexdigest()
    return out
