"""Pipelined listing: folder listings fetched ahead of a depth-first walk."""

from __future__ import annotations

import heapq
import os
import stat
from typing import TYPE_CHECKING

import paramiko
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_HANDLE,
    CMD_NAME,
    CMD_OPENDIR,
    CMD_READDIR,
    CMD_REALPATH,
    CMD_STATUS,
)

from .retry import _Budget
from .streamer import resolved
from .wire import _U32, _join, _parse_names, _status, _string, _Wire

if TYPE_CHECKING:
    from .backend import SFTPBackend

#: Listing: folders listed at once on one session, and per round (a round gives
#: the session back).
LIST_AHEAD = 64
LIST_ROUND_FOLDERS = 1024
#: Names held ahead of the walk (listed, not yet walked): folders are started
#: while the names they are likely to hold (as many as the folders listed so
#: far, on average) fit in this; past twice this, only the folder the walk
#: waits for is read on.  Memory stays flat however many names a copy or a
#: folder has.
LIST_AHEAD_NAMES = 20_000

#: A listed name: (name, st_mode, st_size, st_mtime); 0/None where not sent.
_Listed = tuple[str, int, int, int | None]
SWAPPED = "replaced by a symlink while being listed (what it points to is not the copy's)"


class _Folder:
    __slots__ = ("handle", "items", "problem", "rel")

    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.handle: bytes | None = None
        self.items: list[_Listed] = []
        self.problem: str | None = None


def _key(rel: str) -> tuple[str, ...]:
    """Depth-first order of folders: each folder is sorted by name, and a
    subfolder is walked where its name comes."""
    return tuple(rel.split("/")) if rel else ()


class _Lister:
    """Folder listings fetched ahead of a depth-first walk.

    One listing per round trip (OPENDIR, READDIR..., CLOSE) made the walk of
    2,500 folders take 2.5 s over loopback.  Here up to ``LIST_AHEAD`` folders
    are listed at once on one session, in the order the walk will want them
    (the smallest path first); a round lists at most ``LIST_ROUND_FOLDERS``
    folders and gives the session back with every reply read.

    Memory: folders are started while the names they are likely to hold fit
    in ``LIST_AHEAD_NAMES``; should they hold twice that, only the folder the
    walk waits for is read on, and the others are closed, their names
    dropped, to be listed again in a later round.  (Before, 64 big folders
    read at once held every name of them: 100,000 entries in memory for a
    copy of 100 folders of 1,000 files.)

    OPENDIR follows symlinks: once a folder is listed, its path is REALPATHed
    and must resolve to its place below ``real``, the copy's folder with
    symlinks resolved; else a symlink led the listing elsewhere, and the folder
    is a problem, not its listing."""

    def __init__(self, backend: SFTPBackend, top: bytes, real: bytes,
                 recurse: bool = True) -> None:
        self.backend = backend
        self.top = top
        self.real = real
        #: False: list ``top`` only, none of its subfolders (list_folder).
        self.recurse = recurse
        self.budget = _Budget()
        #: Folders known and not listed yet, smallest path first.
        self.todo: list[tuple[tuple[str, ...], str]] = [((), "")]
        #: Listed folders not yet walked: sorted names, or why it failed.
        self.ready: dict[str, list[_Listed] | str] = {}
        #: Names held: in ``ready`` and in folders being listed.
        self.held = 0
        #: Folders listed to the end and their names, for the average.
        self.folders_listed = 0
        self.names_listed = 0

    def get(self, rel: str) -> list[_Listed] | str:
        """The listing of ``rel`` (which the walk has just reached), or the
        one-line reason it could not be listed."""
        while rel not in self.ready:
            if not self.todo:
                raise AssertionError(f"folder {rel!r} was never queued")
            self.backend._retrying(lambda _generation: self._round(rel), self.budget)
        listing = self.ready.pop(rel)
        if not isinstance(listing, str):
            self.held -= len(listing)
        return listing

    def _round(self, wanted: str) -> None:
        with self.backend.conn.sftp() as (client, _gen):
            wire = _Wire(client)
            active: dict[str, _Folder] = {}
            try:
                self._pump(client, wire, active, wanted)
            except BaseException:
                for folder in active.values():  # listed again on the next round
                    self._put_back(folder)
                raise
            finally:
                wire.finish()

    def _room(self, folders: int) -> bool:
        """Whether ``folders`` folders of the average size so far fit beside
        the names held."""
        average = self.names_listed / self.folders_listed if self.folders_listed else 1
        return self.held + folders * average <= LIST_AHEAD_NAMES

    def _take(self, rel: str) -> str:
        """Take ``rel`` out of the folders to list (it is the smallest path
        there, since the walk goes in path order; looked for if not)."""
        if self.todo[0][1] != rel:
            self.todo = [item for item in self.todo if item[1] != rel]
            heapq.heapify(self.todo)
            return rel
        return heapq.heappop(self.todo)[1]

    def _put_back(self, folder: _Folder) -> None:
        """A folder whose listing was not finished: dropped, to be listed again."""
        self.held -= len(folder.items)
        heapq.heappush(self.todo, (_key(folder.rel), folder.rel))

    def _pump(self, client: paramiko.SFTPClient, wire: _Wire,
              active: dict[str, _Folder], wanted: str) -> None:
        expect: dict[int, tuple[_Folder, int]] = {}
        started = 0
        while True:
            while (self.todo and len(active) < LIST_AHEAD and started < LIST_ROUND_FOLDERS
                   and (not started or self._room(len(active) + 1))):
                rel = self._take(wanted) if not started else heapq.heappop(self.todo)[1]
                folder = active[rel] = _Folder(rel)
                path = _join(self.top, rel)
                expect[wire.request(CMD_OPENDIR, _U32.pack(len(path)) + path)] = (
                    folder, CMD_OPENDIR)
                started += 1
            if not expect:
                return
            kind, rid, body = wire.reply()
            found = expect.pop(rid, None)
            if found is None:
                raise paramiko.SSHException(f"SFTP reply to a request never sent ({rid})")
            folder, what = found
            if what == CMD_CLOSE:
                continue  # a listing is complete before its handle is closed
            if what == CMD_REALPATH:
                self._placed(client, folder, kind, body)
                self._finish(folder, active)
                continue
            done = False
            if kind == CMD_STATUS:
                status = _status(client, body)
                if what == CMD_READDIR and status == "eof":
                    done = True
                elif status is None or status == "eof":
                    folder.problem = "unexpected SFTP status reply"
                else:
                    folder.problem = status
            elif what == CMD_OPENDIR and kind == CMD_HANDLE:
                folder.handle = bytes(_string(body))
            elif what == CMD_READDIR and kind == CMD_NAME:
                listed = _parse_names(body)
                before = len(folder.items)
                folder.items += [(os.fsdecode(name), mode, size, mtime)
                                 for name, mode, size, mtime in listed
                                 if name not in (b".", b"..")]
                self.held += len(folder.items) - before
            else:
                raise paramiko.SSHException(f"unexpected SFTP reply type {kind}")
            dropped = (folder.problem is None and not done and folder.rel != wanted
                       and self.held >= 2 * LIST_AHEAD_NAMES)
            if folder.handle is not None:
                handle = _U32.pack(len(folder.handle)) + folder.handle
                if folder.problem is None and not done and not dropped:
                    expect[wire.request(CMD_READDIR, handle)] = (folder, CMD_READDIR)
                    continue
                expect[wire.request(CMD_CLOSE, handle)] = (folder, CMD_CLOSE)
                if dropped:
                    del active[folder.rel]
                    self._put_back(folder)
                    continue
                if folder.problem is None:
                    # Listed: did the path lead to the copy's own folder?
                    path = _join(self.top, folder.rel)
                    expect[wire.request(CMD_REALPATH, _U32.pack(len(path)) + path)] = (
                        folder, CMD_REALPATH)
                    continue
            self._finish(folder, active)

    def _placed(self, client: paramiko.SFTPClient, folder: _Folder, kind: int,
                body: memoryview) -> None:
        """A listed folder's REALPATH answer: a problem unless it resolves to its
        place below the copy's real folder."""
        if kind == CMD_STATUS:
            folder.problem = _status(client, body) or "unexpected SFTP status reply"
        elif kind != CMD_NAME:
            raise paramiko.SSHException(f"unexpected SFTP reply type {kind}")
        elif resolved(body) != _join(self.real, folder.rel):
            folder.problem = SWAPPED

    def _finish(self, folder: _Folder, active: dict[str, _Folder]) -> None:
        """A folder is done: its listing (its subfolders queued), or its problem."""
        del active[folder.rel]
        if folder.problem is not None:
            self.held -= len(folder.items)
            self.ready[folder.rel] = folder.problem
            return
        self.folders_listed += 1
        self.names_listed += len(folder.items)
        folder.items.sort(key=lambda item: item[0])
        prefix = folder.rel + "/" if folder.rel else ""
        for name, mode, _size, _mtime in folder.items if self.recurse else ():
            if stat.S_ISDIR(mode):
                heapq.heappush(self.todo, (_key(prefix + name), prefix + name))
        self.ready[folder.rel] = folder.items
