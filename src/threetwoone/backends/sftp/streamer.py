"""Pipelined streaming: hashing files over one SFTP session with many
requests in flight.

One request per round trip (open, fstat, prefetch, fstat, close per file) left
the link idle most of the time (10 MB/s over loopback).  _Streamer keeps many
files and many reads in flight on one SFTP session and hashes each file's
replies in order, as they come."""

from __future__ import annotations

import collections
import stat
import struct
from collections.abc import Callable, Iterator

import paramiko
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_NAME,
    CMD_OPEN,
    CMD_READ,
    CMD_REALPATH,
    CMD_STATUS,
    SFTP_FLAG_READ,
)

from ...checksums import FACTORIES
from ..interface import Entry, HashResult
from .wire import _U32, _attributes, _Attrs, _status, _string, _Wire

#: Bytes per READ: OpenSSH's sftp-server answers at most 255 KiB (a server that
#: sends less is asked for the rest, and then for pieces of the size it sends).
READ_SIZE = 255 * 1024
#: Read bytes asked for and not yet received, per session: below the channel
#: window, so the server never blocks on us while we send it requests.
INFLIGHT_BYTES = 8 * 1024 * 1024
#: Files open at once per session: latency-bound on small files (loopback, 20k
#: files: 16 open 50 MB/s, 64 open 90 MB/s, 256 open 120 MB/s before TCP_NODELAY);
#: OpenSSH allows as many handles as its descriptor limit (1024).
OPEN_AHEAD = 128
VIA_STREAM = "sftp stream"
#: Reads of a streamed file whose read ends before its listed size while the
#: file is unchanged (a cut or faulty read): once more, then it is unreadable.
STREAM_TRIES = 2
_READ_AT = struct.Struct(">QI")
_TWO_U32 = struct.Struct(">II")
#: Counted against INFLIGHT_BYTES for a reply that carries no data.
_SMALL_REPLY = 256


NOT_REGULAR = "no longer a regular file (not read)"
CHANGED = "changed while being read"
SWAPPED = ("it or a folder on its path was replaced by a symlink while being read (what "
           "that points to is not the copy's)")
UNPLACED = "the server did not say where the file is (SFTP REALPATH)"


def misplaced(real: bytes | None, expected: bytes) -> str | None:
    """Why a file read by path is not the copy's own, or None if it is: after
    the read, its path must still resolve (SFTP REALPATH: ``real``) to
    ``expected``, its place below the copy's folder with symlinks resolved;
    else a symlink, at the file or at a folder above it, led elsewhere.

    SFTP version 3 cannot open without following symlinks (no O_NOFOLLOW), and
    neither does a tool on the host: this finds a swap still in place when the
    file has been read.  A swap undone between the read and this request (sent
    in the same burst as the read's last requests) is not found: a limit of
    the protocol, stated in the README."""
    if real is None:
        return UNPLACED
    if real != expected:
        return SWAPPED
    return None


def resolved(body: memoryview) -> bytes | None:
    """The one path a REALPATH reply (a NAME) gives, or None.  Only the name is
    read (not the long name and attributes after it): one of these per file."""
    try:
        count, length = _TWO_U32.unpack_from(body, 0)
    except struct.error:
        raise paramiko.SSHException("garbled SFTP NAME reply") from None
    if 8 + length > len(body):
        raise paramiko.SSHException("garbled SFTP NAME reply")
    return bytes(body[8:8 + length]) if count == 1 else None


def _listing_change(attrs: _Attrs | None, entry: Entry) -> str | None:
    """Why a file's attributes (from an FSTAT or LSTAT after reading it) say it
    is not the file listed, or None if it still is: a regular file of the
    listed size and mtime."""
    if attrs is None:
        return CHANGED
    if not stat.S_ISREG(attrs.mode):
        return NOT_REGULAR
    mtime = entry.mtime_ns
    if attrs.size != entry.size or (mtime is not None and attrs.mtime is not None
                                    and attrs.mtime * 1_000_000_000 != mtime):
        return CHANGED
    return None


class _StreamFile:
    """One file being streamed: its requests, and its bytes hashed in order."""

    __slots__ = ("algorithms", "attrs", "closing", "entry", "eof", "error", "full", "handle",
                 "hashed", "hashers", "index", "pending", "reads", "real", "redo",
                 "requested", "resolved", "short", "size", "tries", "waiting")

    def __init__(self, index: int, entry: Entry, full: bytes, real: bytes,
                 algorithms: list[str], tries: int = 1) -> None:
        self.index = index
        self.entry = entry
        self.full = full
        #: Where the file is below the copy's real folder (symlinks resolved):
        #: its path must resolve there after the read.
        self.real = real
        self.algorithms = algorithms
        self.size = entry.size
        self.handle: bytes | None = None
        self.hashers = [FACTORIES[name]() for name in algorithms]
        self.hashed = 0
        #: Reads go up to size + 1: no byte past the listed size proves the end.
        self.requested = 0
        self.reads = 0
        self.pending: dict[int, bytes] = {}
        #: Replies still due (open, reads, fstat, close).
        self.waiting = 0
        self.eof = False
        self.error: str | None = None
        #: FSTAT of the handle, and REALPATH of the path, after the read.
        self.attrs: _Attrs | None = None
        self.resolved: bytes | None = None
        self.closing = False
        #: Closed before a short read asked for the rest: read it again.
        self.redo = False
        #: The server said end of file (or sent nothing) before the listed size.
        self.short = False
        #: Reads of this file so far, this one included.
        self.tries = tries

    def again(self, *, retry: bool = False) -> _StreamFile:
        """The same file, to be read from the start (``retry``: once more after
        a read that ended early)."""
        return _StreamFile(self.index, self.entry, self.full, self.real, self.algorithms,
                           self.tries + 1 if retry else self.tries)

    def retry(self) -> bool:
        """Whether to read it once more: its read ended early though the file
        is still as listed (a cut or faulty read, not a change)."""
        return (self.short and self.error is None and self.tries < STREAM_TRIES
                and _listing_change(self.attrs, self.entry) is None)

    def feed(self, offset: int, data: memoryview) -> None:
        if offset != self.hashed:
            self.pending[offset] = bytes(data)
            return
        for hasher in self.hashers:
            hasher.update(data)
        self.hashed += len(data)
        while self.pending:
            piece = self.pending.pop(self.hashed, None)
            if piece is None:
                break
            for hasher in self.hashers:
                hasher.update(piece)
            self.hashed += len(piece)

    def result(self) -> HashResult:
        """Digests only for bytes that end exactly at the listed size of a file
        still as listed.  Fewer bytes from an unchanged file is a failed read
        (unreadable), never corruption."""
        path = self.entry.path
        change = _listing_change(self.attrs, self.entry)
        if change == NOT_REGULAR and self.attrs is not None:
            return HashResult(path, {}, error=change)
        if self.closing and self.error is None:
            # Opened by a path that may have led through a symlink: is it the
            # copy's own file?
            change = misplaced(self.resolved, self.real) or change
        if self.error is not None:
            return HashResult(path, {}, error=self.error)
        if change is not None:
            return HashResult(path, {}, error=change)
        if self.short or self.hashed < self.size:
            return HashResult(path, {}, error=f"read ended early ({self.hashed:,} of "
                                              f"{self.size:,} bytes)")
        if not self.eof or self.hashed != self.size:
            return HashResult(path, {}, error=CHANGED)
        digests = {name: h.hexdigest() for name, h in zip(self.algorithms, self.hashers,
                                                           strict=True)}
        return HashResult(path, digests, size=self.size, method="full", via=VIA_STREAM)


class _Streamer:
    """Hash files over one SFTP session with many requests in flight.

    Each file is OPENed; once its handle comes, it is READ in ``READ_SIZE``
    pieces up to one byte past its listed size, then FSTATed and CLOSEd in the
    same burst (the server answers in order, so the fstat follows the reads),
    and its path REALPATHed.  It is "changed while being read" unless its
    bytes end exactly at the listed size and that fstat still shows the listed
    size and mtime, so a file replaced after the walk is never hashed as if it
    were the listed one; and it is not the copy's unless its path still
    resolves to its place below the copy's real folder (see :func:`misplaced`).

    A server that answers a READ with less than asked (OpenSSH never does
    below 255 KiB, except at the end of a file) is asked for the rest; a file
    already closed by then is read again, and later files are closed only
    after their reads are answered."""

    def __init__(self, client: paramiko.SFTPClient, files: Iterator[_StreamFile],
                 finished: Callable[[_StreamFile], None]) -> None:
        self.client = client
        self.wire = _Wire(client)
        self.todo = files
        self.finished = finished
        #: Files to read again (a short read came after their close).
        self.again: collections.deque[_StreamFile] = collections.deque()
        #: Files with a handle and reads left to ask for, oldest first.
        self.reading: collections.deque[_StreamFile] = collections.deque()
        self.open_files = 0
        #: request id -> (file, request type, offset, length)
        self.expect: dict[int, tuple[_StreamFile, int, int, int]] = {}
        self.inflight = 0
        self.read_size = READ_SIZE
        self.early_close = True

    def run(self) -> None:
        try:
            while True:
                self._top_up()
                if not self.expect:
                    break
                kind, rid, body = self.wire.reply()
                self._answer(kind, rid, body)
        finally:
            self.wire.finish()

    def _send(self, file: _StreamFile, what: int, body: bytes, offset: int = 0,
              length: int = 0) -> None:
        rid = self.wire.request(what, body)
        self.expect[rid] = (file, what, offset, length)
        file.waiting += 1
        self.inflight += length + _SMALL_REPLY

    def _read(self, file: _StreamFile, offset: int, length: int) -> None:
        assert file.handle is not None
        self._send(file, CMD_READ, _U32.pack(len(file.handle)) + file.handle
                   + _READ_AT.pack(offset, length), offset, length)
        file.reads += 1

    def _close(self, file: _StreamFile) -> None:
        assert file.handle is not None
        handle = _U32.pack(len(file.handle)) + file.handle
        self._send(file, CMD_FSTAT, handle)
        self._send(file, CMD_CLOSE, handle)
        self._send(file, CMD_REALPATH, _U32.pack(len(file.full)) + file.full)
        file.closing = True

    def _top_up(self) -> None:
        budget = INFLIGHT_BYTES
        reading = self.reading
        while reading and self.inflight < budget:
            file = reading[0]
            end = file.size + 1
            while file.requested < end and file.error is None and self.inflight < budget:
                length = min(self.read_size, end - file.requested)
                self._read(file, file.requested, length)
                file.requested += length
            if file.requested < end and file.error is None:
                return  # the budget is spent
            reading.popleft()
            if file.reads == 0 or (self.early_close and file.error is None):
                self._close(file)
            # else: closed when its last read is answered
        while self.open_files < OPEN_AHEAD and self.inflight < budget:
            opening = self.again.popleft() if self.again else next(self.todo, None)
            if opening is None:
                break
            self.open_files += 1
            self._send(opening, CMD_OPEN, _U32.pack(len(opening.full)) + opening.full
                       + _U32.pack(SFTP_FLAG_READ) + _U32.pack(0))

    def _answer(self, kind: int, rid: int, body: memoryview) -> None:
        found = self.expect.pop(rid, None)
        if found is None:
            raise paramiko.SSHException(f"SFTP reply to a request never sent ({rid})")
        file, what, offset, length = found
        file.waiting -= 1
        self.inflight -= length + _SMALL_REPLY
        if what == CMD_READ:
            file.reads -= 1
        if kind == CMD_STATUS:
            problem = _status(self.client, body)
            if what == CMD_READ and problem == "eof":
                file.eof = True
                if offset < file.size:
                    file.short = True  # it shrank (the FSTAT will say) or a cut read
            elif problem == "eof":
                file.error = file.error or "unexpected end of file"
            elif problem is not None:
                file.error = file.error or problem
            elif what != CMD_CLOSE:
                raise paramiko.SSHException("unexpected SFTP status reply")
        elif what == CMD_OPEN and kind == CMD_HANDLE:
            file.handle = bytes(_string(body))
            self.reading.append(file)
        elif what == CMD_READ and kind == CMD_DATA:
            self._data(file, offset, length, _string(body))
        elif what == CMD_FSTAT and kind == CMD_ATTRS:
            file.attrs = _attributes(body)
        elif what == CMD_REALPATH and kind == CMD_NAME:
            file.resolved = resolved(body)
        else:
            raise paramiko.SSHException(f"unexpected SFTP reply type {kind}")
        if (what == CMD_READ and file.reads == 0 and not file.closing
                and file not in self.reading):
            self._close(file)  # every read was asked for and is answered
        if file.waiting == 0 and (file.closing or file.handle is None):
            self.open_files -= 1
            if file.redo:
                self.again.append(file.again())
            elif file.retry():
                self.again.append(file.again(retry=True))
            else:
                self.finished(file)

    def _data(self, file: _StreamFile, offset: int, length: int, data: memoryview) -> None:
        got = len(data)
        if file.error is None:
            file.feed(offset, data)
        if offset + got > file.size:
            file.error = file.error or CHANGED  # it grew
        elif offset + got == file.size:
            file.eof = True  # a short read that stops at the listed size
        elif not got:
            file.short = True
        elif got < length and file.error is None:
            # The server sends less per read than asked: from now on ask for
            # pieces of the size it sends, and close files after their reads.
            if 4096 <= got < self.read_size:
                self.read_size = got
            self.early_close = False
            if file.closing:
                file.redo = True
            else:
                self._read(file, offset + got, length - got)
