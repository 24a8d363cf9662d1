"""Folders below a copy's root, opened by descriptor and never through a symlink.

A path like ``run1/lane2/f.fq`` is never handed to the kernel as a string: the
root is opened once, then each folder relative to its parent's descriptor
(``openat``) with ``O_DIRECTORY | O_NOFOLLOW``, and the file relative to its
folder.  A folder swapped for a symlink after the listing therefore fails to
open instead of being followed out of the copy, and paths longer than
``PATH_MAX`` (4096 bytes) work, since no single call sees more than one name.

Folders that are listed are opened with ``O_NOATIME`` where permitted (the
owner, or CAP_FOWNER), so reading them does not move their atime either.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NOATIME = getattr(os, "O_NOATIME", 0)
#: For folders that are only passed through (never read), ``O_PATH`` where the
#: kernel has it: it needs search, not read, permission, as a path lookup does.
_PASS_THROUGH = getattr(os, "O_PATH", os.O_RDONLY)

#: At most this many folder descriptors held by one chain; deeper trees drop the
#: shallowest and reopen them from their nearest held ancestor when needed.
MAX_HELD = 64


class FolderReplaced(OSError):
    """A folder on the path is no longer a folder (a symlink, a file)."""


def open_root(path: str) -> tuple[int, os.stat_result]:
    """Open a copy's root folder for listing.  The root's own path may go through
    symlinks (a location mounted via a link is the user's choice); below it,
    nothing is followed.  Return the descriptor and its stat."""
    fd = _open_dir(path, None, os.O_RDONLY, noatime=True)
    try:
        return fd, os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise


def open_folder(name: str, parent: int, listing: bool) -> int:
    """Open folder ``name`` relative to the descriptor ``parent`` without
    following a symlink: ``listing`` for a folder that will be read (O_NOATIME
    where permitted), else only to reach what is below it."""
    flags = _NOFOLLOW | (os.O_RDONLY if listing else _PASS_THROUGH)
    try:
        return _open_dir(name, parent, flags, noatime=listing)
    except NotADirectoryError:
        # O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR: say which it is.
        raise FolderReplaced(errno.ENOTDIR, _not_a_folder(name, parent), name) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FolderReplaced(errno.ELOOP, _not_a_folder(name, parent), name) from None
        raise


def _open_dir(path: str, dir_fd: int | None, flags: int, noatime: bool) -> int:
    flags |= _DIRECTORY | _CLOEXEC
    if noatime and _NOATIME:
        try:
            return os.open(path, flags | _NOATIME, dir_fd=dir_fd)
        except PermissionError as exc:
            if exc.errno != errno.EPERM:
                raise
            # O_NOATIME needs ownership or CAP_FOWNER; without, open as usual.
    return os.open(path, flags, dir_fd=dir_fd)


def _not_a_folder(name: str, parent: int) -> str:
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return f"folder {name!r} is no longer a folder"
    if stat.S_ISLNK(st.st_mode):
        return f"folder {name!r} was replaced by a symlink (not followed)"
    return f"folder {name!r} is no longer a folder"


class FolderChain:
    """Descriptors of the folders from a copy's root down to the current one.

    ``enter(parts)`` returns the descriptor of the folder ``parts`` below the
    root, keeping the descriptors the new folder shares with the previous one:
    files handed over in path order cost one ``openat`` per new folder.  The
    chain owns every descriptor except the root's."""

    def __init__(self, root_fd: int, listing: bool = False) -> None:
        self.listing = listing
        self.names: list[str] = []
        #: fds[i] is the folder names[:i]; -1 where dropped (see MAX_HELD).
        self.fds: list[int] = [root_fd]
        self.held = 0

    def enter(self, parts: Sequence[str]) -> int:
        names, fds = self.names, self.fds
        same = 0
        limit = min(len(parts), len(names))
        while same < limit and parts[same] == names[same]:
            same += 1
        self._close_below(same)
        if fds[-1] < 0:
            self._reopen()
        for name in parts[same:]:
            fd = open_folder(name, fds[-1], self.listing)
            names.append(name)
            fds.append(fd)
            self.held += 1
            if self.held > MAX_HELD:
                self._drop_shallowest()
        return fds[-1]

    def close(self) -> None:
        self._close_below(0)

    def _close_below(self, depth: int) -> None:
        for fd in self.fds[depth + 1:]:
            if fd >= 0:
                os.close(fd)
                self.held -= 1
        del self.fds[depth + 1:]
        del self.names[depth:]

    def _drop_shallowest(self) -> None:
        for index in range(1, len(self.fds) - 1):
            if self.fds[index] >= 0:
                os.close(self.fds[index])
                self.fds[index] = -1
                self.held -= 1
                return

    def _reopen(self) -> None:
        """Reopen the deepest folder from its nearest held ancestor (closing the
        folders passed on the way: they are dropped for a reason)."""
        depth = len(self.fds) - 1
        start = max(i for i in range(depth + 1) if self.fds[i] >= 0)
        fd = self.fds[start]
        for index in range(start, depth):
            try:
                child = open_folder(self.names[index], fd, self.listing)
            finally:
                if index != start:
                    os.close(fd)
            fd = child
        self.fds[depth] = fd
        self.held += 1


def split(path: str) -> tuple[list[str], str]:
    """``"a/b/c"`` -> (["a", "b"], "c")."""
    parts = path.split("/")
    return parts[:-1], parts[-1]
