"""SFTP packets on a session's channel, sent without waiting for each reply,
and the parsers for the replies the backend reads (STATUS, HANDLE, DATA,
ATTRS, NAME), with struct: paramiko's own objects cost several times more per
reply, which shows on 20,000 files."""

from __future__ import annotations

import errno
import os
import struct
from typing import Any, NamedTuple, cast

import paramiko


def sftp_error(exc: BaseException) -> str:
    """One line for an SFTP status error on a file."""
    code = getattr(exc, "errno", None)
    if code == errno.EACCES:
        return "permission denied"
    if code == errno.ENOENT:
        return "no such file (removed during the audit?)"
    text = str(exc.args[-1] if getattr(exc, "args", None) else exc).strip()
    return text or type(exc).__name__


def _join(folder: bytes, relpath: str) -> bytes:
    rel = os.fsencode(relpath)
    if not rel:
        return folder
    return folder.rstrip(b"/") + b"/" + rel if folder not in (b"", b".") else rel


_HEAD = struct.Struct(">IBI")
_U32 = struct.Struct(">I")
#: A reply longer than this is garbage (OpenSSH sends at most 256 KiB).
_MAX_REPLY = 16 * 1024 * 1024


class _Wire:
    """SFTP packets on a session's channel, without waiting for each reply.

    Request ids continue the client's own numbering; a run consumes every reply
    it asked for before the client is used again, and on an exception the
    session is discarded (``Connection.sftp`` does not reuse it)."""

    def __init__(self, client: paramiko.SFTPClient) -> None:
        self.client = cast(Any, client)
        channel = client.get_channel()
        if channel is None:
            raise EOFError("the SFTP session has no channel")
        self.channel = channel
        self.next_id: int = self.client.request_number
        self.out: list[bytes] = []
        self.buf = b""
        self.pos = 0

    def request(self, kind: int, body: bytes) -> int:
        rid = self.next_id
        self.next_id = (rid + 1) & 0xFFFFFFFF
        self.out.append(_HEAD.pack(len(body) + 5, kind, rid) + body)
        return rid

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            self.channel.sendall(data)

    def finish(self) -> None:
        self.client.request_number = self.next_id

    def _more(self, need: int) -> None:
        """Buffer at least ``need`` unread bytes (sending what is queued first)."""
        self.flush()
        have = len(self.buf) - self.pos
        chunks = [self.buf[self.pos:]] if have else []
        while have < need:
            # Everything buffered at once: paramiko's pipe then moves no memory.
            data = self.channel.recv(1 << 30)
            if not data:
                raise EOFError("the server closed the SFTP session")
            chunks.append(data)
            have += len(data)
        self.buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.pos = 0

    def reply(self) -> tuple[int, int, memoryview]:
        """The next reply: (type, request id, the rest of the packet)."""
        if len(self.buf) - self.pos < 9:
            self._more(9)
        length, kind, rid = _HEAD.unpack_from(self.buf, self.pos)
        if length < 5 or length > _MAX_REPLY:
            raise paramiko.SSHException("garbled SFTP reply")
        if self.pos + 4 + length > len(self.buf):
            self._more(4 + length)
        start = self.pos + 9
        self.pos += 4 + length
        return kind, rid, memoryview(self.buf)[start:self.pos]


def _status(client: paramiko.SFTPClient, body: memoryview) -> str | None:
    """A STATUS reply: None for OK, "eof" for end of file, or the one-line error."""
    try:
        cast(Any, client)._convert_status(paramiko.Message(bytes(body)))
    except EOFError:
        return "eof"
    except OSError as exc:
        return sftp_error(exc)
    return None


def _string(body: memoryview) -> memoryview:
    (length,) = _U32.unpack_from(body, 0)
    if 4 + length > len(body):
        raise paramiko.SSHException("garbled SFTP reply")
    return body[4:4 + length]


_U64 = struct.Struct(">Q")
_TIMES = struct.Struct(">II")


class _Attrs(NamedTuple):
    """What an ATTRS (or a NAME entry) says about a file; None where not sent."""

    mode: int
    size: int | None
    mtime: int | None


def _parse_attrs(body: memoryview, pos: int) -> tuple[_Attrs, int]:
    """SFTP file attributes at ``pos``: (attributes, the position after them).
    Parsed with struct: paramiko's SFTPAttributes costs several times more,
    which shows on 20,000 files."""
    (flags,) = _U32.unpack_from(body, pos)
    pos += 4
    mode = 0
    size = mtime = None
    if flags & paramiko.SFTPAttributes.FLAG_SIZE:
        (size,) = _U64.unpack_from(body, pos)
        pos += 8
    if flags & paramiko.SFTPAttributes.FLAG_UIDGID:
        pos += 8
    if flags & paramiko.SFTPAttributes.FLAG_PERMISSIONS:
        (mode,) = _U32.unpack_from(body, pos)
        pos += 4
    if flags & paramiko.SFTPAttributes.FLAG_AMTIME:
        _atime, mtime = _TIMES.unpack_from(body, pos)
        pos += 8
    if flags & paramiko.SFTPAttributes.FLAG_EXTENDED:
        (pairs,) = _U32.unpack_from(body, pos)
        pos += 4
        for _ in range(2 * pairs):
            (length,) = _U32.unpack_from(body, pos)
            pos += 4 + length
    if pos > len(body):
        raise struct.error("attributes past the end of the reply")
    return _Attrs(mode, size, mtime), pos


def _attributes(body: memoryview) -> _Attrs:
    """An ATTRS reply (after the request id)."""
    try:
        return _parse_attrs(body, 0)[0]
    except struct.error:
        raise paramiko.SSHException("garbled SFTP ATTRS reply") from None


def _parse_names(body: memoryview) -> list[tuple[bytes, int, int, int | None]]:
    """A NAME reply (after the request id): [(name, mode, size, mtime)]."""
    (count,) = _U32.unpack_from(body, 0)
    pos = 4
    out = []
    try:
        for _ in range(count):
            (length,) = _U32.unpack_from(body, pos)
            name = bytes(body[pos + 4:pos + 4 + length])
            pos += 4 + length
            (length,) = _U32.unpack_from(body, pos)  # longname
            pos += 4 + length
            attrs, pos = _parse_attrs(body, pos)
            out.append((name, attrs.mode, attrs.size or 0, attrs.mtime))
    except struct.error:
        raise paramiko.SSHException("garbled SFTP NAME reply") from None
    return out
