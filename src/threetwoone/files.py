"""What a path is, in words, and reading a configuration file safely.

An inventory or a policy named on a command line may be anything: a FIFO
(reading it blocks forever), ``/dev/zero`` (endless), a tape device (opening it
may rewind the tape), a directory.  Only regular files are read, up to a size
bound, and the check comes before the open.
"""

from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"),
          (stat.S_ISREG, "a regular file"))


def kind_of(mode: int) -> str:
    """``a FIFO (named pipe)``, ``a directory``, ... for an ``st_mode``."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


class NotReadable(Exception):
    """Why a file was not read, in words for the user (no path: the caller has it)."""


def size_words(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


def read_regular_file(path: str, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes
    (a symlink to one is fine); else NotReadable saying why."""
    try:
        before = os.stat(path)
    except FileNotFoundError:
        raise NotReadable("no such file") from None
    except OSError as exc:
        raise NotReadable(f"cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(before.st_mode):
        raise NotReadable(f"is {kind_of(before.st_mode)}, not a regular file")
    too_big = f"larger than the limit of {size_words(limit)}"
    if before.st_size > limit:
        raise NotReadable(f"is {size_words(before.st_size)}, {too_big}")
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the stat, the
        # open returns at once instead of waiting for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise NotReadable(f"cannot read: {exc.strerror}") from None
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode):
            raise NotReadable(f"is {kind_of(now.st_mode)}, not a regular file")
        chunks = []
        remaining = limit + 1  # one byte more tells a file that grew past the limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise NotReadable(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise NotReadable(too_big)
    return data


def not_a_file_problem(path: str) -> str | None:
    """Why ``path`` cannot be opened or created as a regular file of ours, or
    None: it is one (a symlink to one is fine) or nothing is there yet.  Only
    ``stat`` calls: nothing is opened or created."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"{path} is a symbolic link to {os.readlink(path)}, which does not exist"
        return None
    except OSError:
        return None  # not allowed to look, a file for a folder: the opener explains
    if stat.S_ISREG(info.st_mode):
        return None
    return f"{path} is {kind_of(info.st_mode)}, not a regular file"
