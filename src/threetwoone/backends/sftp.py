"""SFTP locations: copies on a backup host reached over SSH (paramiko).

Read-only by construction: the only SFTP requests sent are OPENDIR/READDIR,
STAT/LSTAT/FSTAT, REALPATH, OPEN with the read flag only, READ and CLOSE; the
only commands run are ``xargs -0 TOOL --``, a fixed line with the paths on its
stdin (see :mod:`.remote_hash`).  Nothing is ever written on the remote host.

How a file's content is established, per file and reported in ``via``:

* ``remote xxhsum -H2`` (or ``sha256sum``, ``md5sum``...): the host hashes its
  own disk, many files per exec; used when the probe proved the tool exists and
  computes the requested algorithm;
* ``sftp stream``: the bytes are read over SFTP and hashed here, many files and
  reads in flight on one session (see :class:`_Streamer`);
  used when there is no tool, no shell (``ForceCommand internal-sftp``), when
  ``remote_hash: false``, and for every file the tool did not answer for.

Faults: anything before the copy is reached is :class:`LocationUnreachable`; a
connection lost later is retried once on a new connection, then
:class:`CopyFailed`; one unreadable file is a ``HashResult`` with ``error``.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import heapq
import itertools
import os
import stat
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, NamedTuple, TypeVar, cast

import paramiko
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_LSTAT,
    CMD_NAME,
    CMD_OPEN,
    CMD_OPENDIR,
    CMD_READ,
    CMD_READDIR,
    CMD_REALPATH,
    CMD_STATUS,
    SFTP_FLAG_READ,
)

from ..checksums import FACTORIES
from . import remote_hash
from .interface import (
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
from .parallel import batches, run_bounded
from .remote_hash import TOOLS, Item, Tool
from .ssh_connect import (
    MAX_CHANNELS,
    Connection,
    Target,
    acquire,
    describe,
    release,
    resolve_target,
)
from .streams import buffered

T = TypeVar("T")

#: Streaming: files per task (one SFTP session each, requests pipelined).
STREAM_BATCH_FILES = 512
STREAM_BATCH_BYTES = 256 * 1024 * 1024
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
#: Listing: folders listed at once on one session, and per round (a round gives
#: the session back): at most this many folders or names.
LIST_AHEAD = 64
LIST_ROUND_FOLDERS = 1024
LIST_ROUND_NAMES = 100_000
#: open_read: read requests kept in flight (paramiko prefetch).
PREFETCH_REQUESTS = 128
#: A remote hash of a big file prints nothing until done: allow this slow a disk.
SLOWEST_REMOTE_DISK = 8 * 1024 * 1024
VIA_STREAM = "sftp stream"
#: Reads of a streamed file whose read ends before its listed size while the
#: file is unchanged (a cut or faulty read): once more, then it is unreadable.
STREAM_TRIES = 2
_CONNECTION_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ENOTCONN,
                      errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH}


class _Lost(Exception):
    """The connection under an operation is gone (or stopped answering)."""

    def __init__(self, generation: int, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.generation = generation


class _Budget:
    """One reconnect per operation (a walk, a hash_files call), shared by workers.
    The reconnect happens under ``lock``: workers that lost the same connection
    wait for it and then see either the new connection or why it failed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.left = 1
        #: Why the one reconnect failed, so every worker reports the same reason.
        self.failure: str | None = None


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


class SFTPBackend(Backend):
    kind = "sftp"

    def __init__(self, name: str, location: Any) -> None:
        super().__init__(name, location)
        self._target: Target | None = None
        self._conn: Connection | None = None
        self._closed = False

    # -- life cycle ----------------------------------------------------------
    @property
    def target(self) -> Target:
        if self._target is None:
            settings = self.location.settings
            self._target = resolve_target(str(settings["host"]), settings)
        return self._target

    def connect(self) -> None:
        if self._conn is not None:
            return
        self._conn = acquire(self.target)
        root = self._location_root()
        try:
            attrs = self._sftp_call(lambda client: client.stat(root), _Budget())
        except CopyFailed as exc:
            self.close()
            raise LocationUnreachable(str(exc)) from None
        except OSError as exc:
            self.close()
            shown = os.fsdecode(root) or "."
            raise LocationUnreachable(
                f"{self.target.label}: location root {shown}: {sftp_error(exc)}") from None
        if not stat.S_ISDIR(attrs.st_mode or 0):
            self.close()
            raise LocationUnreachable(f"{self.target.label}: location root "
                                      f"{os.fsdecode(root)} is not a directory")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            release(conn)

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self.connect()
        assert self._conn is not None
        return self._conn

    # -- paths ----------------------------------------------------------------
    def _location_root(self) -> bytes:
        """The root as SFTP takes it: ``~/x`` and relative roots are relative to
        the login folder, as in ``sftp`` itself."""
        root = self.location.root.strip() or "."
        if root == "~":
            root = "."
        elif root.startswith("~/"):
            root = root[2:] or "."
        return os.fsencode(root)

    def full_path(self, path: str) -> bytes:
        return _join(self._location_root(), path.strip("/"))

    # -- error handling ---------------------------------------------------------
    def _lost(self, generation: int, exc: BaseException) -> _Lost | None:
        """_Lost if ``exc`` means the connection died; None if it is about a file
        (an SFTP status: no such file, permission denied) or a refused channel."""
        if isinstance(exc, TimeoutError):
            self.conn.drop(generation)
            return _Lost(generation, exc)
        if isinstance(exc, paramiko.ChannelException):
            return None
        if isinstance(exc, (paramiko.SSHException, EOFError)):
            # Raised before the transport's thread has marked it inactive.
            return _Lost(generation, exc)
        if isinstance(exc, OSError) and (
                not self.conn.is_active() or exc.errno in _CONNECTION_ERRNOS
                or str(exc) == "Socket is closed"):
            return _Lost(generation, exc)
        return None

    def _retrying(self, operation: Callable[[int], T], budget: _Budget) -> T:
        """Run ``operation(generation)``; after a lost connection reconnect once
        (per budget) and run it again."""
        attempts = 0
        while True:
            generation = self.conn.generation
            try:
                return operation(generation)
            except _Lost as lost:
                cause: BaseException = lost
                generation = lost.generation
            except (paramiko.SSHException, EOFError, OSError) as exc:
                found = self._lost(generation, exc)
                if found is None:
                    if isinstance(exc, (paramiko.SSHException, EOFError)):
                        raise CopyFailed(f"{self.target.label}: {describe(exc)}") from None
                    raise
                cause = found
            attempts += 1
            conn = self.conn
            label = self.target.label
            with budget.lock:
                if attempts <= 3 and conn.generation != generation and conn.is_active():
                    continue  # another worker already reconnected
                if budget.failure:
                    raise CopyFailed(budget.failure) from None
                if attempts > 3 or not budget.left:
                    raise CopyFailed(f"{label}: connection lost again after reconnecting "
                                     f"({cause})") from None
                budget.left -= 1
                try:
                    conn.reconnect(generation)
                except LocationUnreachable as exc:
                    budget.failure = (f"{label}: connection lost ({cause}) and reconnecting "
                                      f"failed: {str(exc).removeprefix(label + ': ')}")
                    raise CopyFailed(budget.failure) from None

    def _sftp_call(self, fn: Callable[[paramiko.SFTPClient], T], budget: _Budget) -> T:
        def operation(generation: int) -> T:
            with self.conn.sftp() as (client, _gen):
                return fn(client)
        return self._retrying(operation, budget)

    # -- reading ----------------------------------------------------------------
    def stat_root(self, path: str) -> RootInfo | None:
        full = self.full_path(path)

        def look(client: paramiko.SFTPClient) -> tuple[paramiko.SFTPAttributes, str] | None:
            try:
                attrs = client.stat(full)
            except OSError as exc:
                if getattr(exc, "errno", None) == errno.ENOENT:
                    return None
                raise
            try:
                real = client.normalize(full)
            except (UnicodeDecodeError, OSError):
                real = os.fsdecode(full)
            return attrs, real

        try:
            found = self._sftp_call(look, _Budget())
        except OSError as exc:
            raise CopyFailed(f"{self.target.label}: cannot stat {os.fsdecode(full)}: "
                             f"{sftp_error(exc)}") from None
        if found is None:
            return None
        attrs, real = found
        if not stat.S_ISDIR(attrs.st_mode or 0):
            raise NotAFolder(f"{self.target.label}: {os.fsdecode(full)} is a file, not a "
                             "folder")
        target = self.target
        return RootInfo(identity=f"sftp:{target.hostname.lower()}:{target.port}:{real}")

    def storage_identity(self, path: str, root: RootInfo) -> dict[str, str]:
        """The settings, the host as ``~/.ssh/config`` resolves it, and the
        fingerprint of the host key the server proved it holds: another machine
        behind the same name is other storage."""
        facts = super().storage_identity(path, root)
        target = self.target
        facts["address"] = f"{target.user}@{target.hostname.lower()}:{target.port}"
        try:
            transport, _generation = self.conn.transport
            key = transport.get_remote_server_key()
        except (EOFError, paramiko.SSHException) as exc:
            raise CopyFailed(f"{target.label}: {describe(exc)}") from None
        facts["host_key"] = f"{key.get_name()} {key.fingerprint}"
        return facts

    def walk(self, path: str) -> Iterator[Entry | WalkProblem]:
        lister = _Lister(self, self.full_path(path))
        listing = lister.get("")
        if isinstance(listing, str):
            yield WalkProblem("", listing)
            return
        stack: list[tuple[str, Iterator[_Listed]]] = [("", iter(listing))]
        while stack:
            prefix, items = stack[-1]
            item = next(items, None)
            if item is None:
                stack.pop()
                continue
            name, mode, size, mtime = item
            rel = prefix + name
            if stat.S_ISDIR(mode):
                children = lister.get(rel)
                if isinstance(children, str):
                    yield WalkProblem(rel, children)
                    continue
                stack.append((rel + "/", iter(children)))
            elif stat.S_ISREG(mode):
                yield Entry(rel, EntryKind.FILE, size,
                            mtime * 1_000_000_000 if mtime is not None else None)
            elif stat.S_ISLNK(mode):
                yield Entry(rel, EntryKind.SYMLINK, 0, None)
            else:
                yield Entry(rel, EntryKind.SPECIAL, 0, None)

    def open_read(self, path: str, relpath: str) -> BinaryIO:
        full = _join(self.full_path(path), relpath)
        transport, _gen = self.conn.transport
        try:
            client = paramiko.SFTPClient.from_transport(transport)
            if client is None:
                raise EOFError("the server refused an SFTP session")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise CopyFailed(f"{self.target.label}: {describe(exc)}") from None
        try:
            handle = client.open(full, "r")
            size = handle.stat().st_size or 0
            _prefetch(handle, size)
        except BaseException:
            client.close()
            raise
        count = 0

        def read(wanted: int) -> bytes:
            nonlocal count
            data = handle.read(wanted)
            count += len(data)
            if wanted and not data and count < size:
                raise OSError(errno.EIO, f"read ended early ({count:,} of {size:,} bytes)")
            return data

        def close() -> None:  # the file has a session of its own: close both
            try:
                handle.close()
            finally:
                client.close()

        return buffered(read, close, size=1 << 20)

    # -- hashing ------------------------------------------------------------------
    def _exec(self, command: bytes, stdin: bytes, timeout: float,
              budget: _Budget) -> tuple[int, bytes]:
        """Run a fixed ``command`` on the host: (exit status or -1, stdout).
        A refused exec channel is status -1; a lost connection is retried."""
        def run(generation: int) -> tuple[int, bytes]:
            conn = self.conn
            try:
                status, out, _err = conn.run(command, timeout, stdin)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                lost = self._lost(generation, exc)
                if lost:
                    raise lost from None
                return -1, b""
            if status == -1 and not conn.is_active():
                raise _Lost(generation, EOFError("connection closed"))
            return status, out
        return self._retrying(run, budget)

    def _remote_tools(self, algorithms: Sequence[str], budget: _Budget) -> list[Tool]:
        """Tools to hash ``algorithms`` on the host (all that work, in the
        caller's order), or [] to stream.  Each is probed once per connection,
        with the very command a batch runs, on /dev/null."""
        if self.location.settings.get("remote_hash") is False:
            return []
        conn = self.conn
        tools = []
        for algorithm in algorithms:
            tool = TOOLS.get(algorithm)
            if tool is None:
                continue
            if algorithm not in conn.remote_tools:
                status, out = self._exec(remote_hash.batch_command(tool),
                                         remote_hash.batch_input([remote_hash.PROBE_PATH]),
                                         self.target.timeout, budget)
                conn.remote_tools[algorithm] = remote_hash.probe_ok(tool, status, out)
            if conn.remote_tools[algorithm]:
                tools.append(tool)
        return tools

    def _host_folder(self, folder: bytes, budget: _Budget) -> bytes | None:
        """``folder`` as an absolute path on the host (SFTP REALPATH), or None
        if the server cannot say (then nothing is hashed remotely)."""
        def resolve(client: paramiko.SFTPClient) -> bytes | None:
            wire = _Wire(client)
            try:
                rid = wire.request(CMD_REALPATH, _U32.pack(len(folder)) + folder)
                kind, got, body = wire.reply()
            finally:
                wire.finish()
            if got != rid:
                raise paramiko.SSHException(f"SFTP reply to a request never sent ({got})")
            if kind != CMD_NAME:
                return None
            names = _parse_names(body)
            return names[0][0] if len(names) == 1 else None

        try:
            resolved = self._sftp_call(resolve, budget)
        except OSError:
            return None
        return resolved if resolved is not None and resolved.startswith(b"/") else None

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
        folder = self.full_path(path)
        algorithms = list(algorithms)
        budget = _Budget()
        tools = self._remote_tools(algorithms, budget) if entries else []
        host_folder = self._host_folder(folder, budget) if tools else None
        stream: Sequence[Entry] = entries
        remote: Iterator[list[Item]] = iter(())
        if tools and host_folder is not None:
            items = [Item(i, _join(host_folder, e.path), e.size) for i, e in enumerate(entries)]
            # Paths a tool's output could not tell apart are read over SFTP.
            stream = [entries[item.index] for item in items
                      if not remote_hash.hashable(item.path)]
            remote = remote_hash.batches(item for item in items
                                         if remote_hash.hashable(item.path))
        streamed = (functools.partial(self._stream_batch, folder, batch, algorithms, budget,
                                      progress)
                    for batch in batches(stream, STREAM_BATCH_BYTES, STREAM_BATCH_FILES))
        workers = max(1, min(workers, MAX_CHANNELS))
        if workers == 1:
            yield from self._remote_pipeline(folder, entries, remote, tools, algorithms,
                                             budget, progress)
            for task in streamed:
                yield from task()
            return
        tasks = itertools.chain((functools.partial(self._remote_batch, folder, entries, batch,
                                                   tools, algorithms, budget, progress)
                                 for batch in remote), streamed)
        yield from run_bounded(tasks, workers, "sftp")

    def _remote_pipeline(self, folder: bytes, entries: Sequence[Entry],
                         remote: Iterator[list[Item]], tools: list[Tool],
                         algorithms: list[str], budget: _Budget,
                         progress: ProgressCallback | None) -> Iterator[HashResult]:
        """Remote batches one at a time (``-j 1``), each batch's check against
        the listing (and any file read again) done on a second thread while
        the host hashes the next batch: one tool running at a time, and the
        check costs no wall time (20k files over loopback: ~0.3 s saved)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sftp-check") as checker:
            checking: Future[list[HashResult]] | None = None
            try:
                for batch in remote:
                    digests = self._remote_hash(batch, tools, budget)
                    if checking is not None:
                        yield from checking.result()
                    checking = checker.submit(self._remote_results, folder, entries, batch,
                                              digests, tools, algorithms, budget, progress)
                if checking is not None:
                    yield from checking.result()
                    checking = None
            finally:
                if checking is not None:
                    checking.cancel()

    def _run_tool(self, tool: Tool, paths: list[bytes], timeout: float,
                  budget: _Budget) -> tuple[int, dict[int, str] | None]:
        """Run ``tool`` on ``paths``: (exit status or -1, parsed output).  The
        paths are data on stdin, never part of the command line."""
        status, out = self._exec(remote_hash.batch_command(tool),
                                 remote_hash.batch_input(paths), timeout, budget)
        return status, remote_hash.parse_output(out, paths, tool.hexlen)

    def _remote_digests(self, tool: Tool, paths: list[bytes], timeout: float,
                        budget: _Budget) -> dict[int, str]:
        """Digests by index into ``paths`` that ``tool`` stands by.

        A complete answer is taken as it is.  A partial one (exit status not
        0: a file it could not read, a cut session) is not: the files it
        printed a line for are hashed again on their own, and kept only if that
        second answer is complete and agrees.  Every other file is left to the
        caller, who reads it over SFTP (and so learns why the tool could not)."""
        status, found = self._run_tool(tool, paths, timeout, budget)
        if found is None:
            return {}
        if remote_hash.accept(status, found, len(paths)):
            return found
        answered = sorted(found)
        if not answered:
            return {}
        status, again = self._run_tool(tool, [paths[i] for i in answered], timeout, budget)
        if again is None or not remote_hash.accept(status, again, len(answered)):
            return {}
        return {answered[j]: digest for j, digest in again.items()
                if digest == found[answered[j]]}

    def _remote_batch(self, folder: bytes, entries: Sequence[Entry], batch: list[Item],
                      tools: list[Tool], algorithms: list[str], budget: _Budget,
                      progress: ProgressCallback | None) -> list[HashResult]:
        digests = self._remote_hash(batch, tools, budget)
        return self._remote_results(folder, entries, batch, digests, tools, algorithms,
                                    budget, progress)

    def _remote_hash(self, batch: list[Item], tools: list[Tool],
                     budget: _Budget) -> list[dict[str, str]]:
        """Each file's digests by algorithm, as the host's tools stand by them."""
        paths = [item.path for item in batch]
        digests: list[dict[str, str]] = [{} for _ in batch]
        # The tool prints nothing until it has read a batch (its stdout is a
        # pipe, so fully buffered): allow for reading all of it.
        timeout = self.target.timeout + sum(item.size for item in batch) / SLOWEST_REMOTE_DISK
        for tool in tools:
            for index, digest in self._remote_digests(tool, paths, timeout, budget).items():
                digests[index][tool.algorithm] = digest
        return digests

    def _remote_results(self, folder: bytes, entries: Sequence[Entry], batch: list[Item],
                        digests: list[dict[str, str]], tools: list[Tool],
                        algorithms: list[str], budget: _Budget,
                        progress: ProgressCallback | None) -> list[HashResult]:
        """Results for a hashed batch: a digest counts only for a file still as
        listed; every other file is read over SFTP."""
        # The tool read whatever each file held when it ran: its digest counts
        # only if the file is still the one listed (size and mtime), as the
        # streamed path checks with its FSTAT.  Any other is read again.
        answered = [i for i, found in enumerate(digests) if len(found) == len(tools)]
        still = self._as_listed([(batch[i].path, entries[batch[i].index]) for i in answered],
                                budget)
        for i, unchanged in zip(answered, still, strict=True):
            if not unchanged:
                digests[i] = {}
        results: list[HashResult] = []
        fallback: list[Entry] = []
        via = ", ".join(tool.via for tool in tools)
        for item, found in zip(batch, digests, strict=True):
            entry = entries[item.index]
            if len(found) == len(tools):
                ordered = {a: found[a] for a in algorithms if a in found}
                results.append(HashResult(entry.path, ordered, size=entry.size,
                                          method="full", via=via))
                if progress:
                    progress(1, entry.size)
            else:
                fallback.append(entry)
        if fallback:
            results += self._stream_batch(folder, fallback, algorithms, budget, progress)
        return results

    def _as_listed(self, files: list[tuple[bytes, Entry]], budget: _Budget) -> list[bool]:
        """Whether each file (path, listed entry) is still a regular file of
        its listed size and mtime: one LSTAT each, pipelined on one session."""
        if not files:
            return []

        def look(client: paramiko.SFTPClient) -> list[bool]:
            wire = _Wire(client)
            try:
                expect = {wire.request(CMD_LSTAT, _U32.pack(len(path)) + path): index
                          for index, (path, _entry) in enumerate(files)}
                same = [False] * len(files)
                while expect:
                    kind, rid, body = wire.reply()
                    index = expect.pop(rid, -1)
                    if index < 0:
                        raise paramiko.SSHException(
                            f"SFTP reply to a request never sent ({rid})")
                    if kind == CMD_ATTRS:
                        same[index] = _listing_change(_attributes(body),
                                                      files[index][1]) is None
                    elif kind != CMD_STATUS:
                        raise paramiko.SSHException(f"unexpected SFTP reply type {kind}")
                return same
            finally:
                wire.finish()

        try:
            return self._sftp_call(look, budget)
        except OSError:
            return [False] * len(files)

    def _stream_batch(self, folder: bytes, entries: Sequence[Entry], algorithms: list[str],
                      budget: _Budget, progress: ProgressCallback | None
                      ) -> list[HashResult]:
        """Stream ``entries`` on one SFTP session, many requests in flight.  After
        a lost connection only the files not finished yet are read again."""
        results: dict[int, HashResult] = {}

        def finished(file: _StreamFile) -> None:
            result = file.result()
            results[file.index] = result
            if progress and result.error is None:
                progress(1, result.size)

        def operation(generation: int) -> None:
            files = (_StreamFile(i, entry, _join(folder, entry.path), algorithms)
                     for i, entry in enumerate(entries) if i not in results)
            with self.conn.sftp() as (client, _gen):
                _Streamer(client, files, finished).run()

        self._retrying(operation, budget)
        return [results[i] for i in range(len(entries))]

def _prefetch(handle: paramiko.SFTPFile, size: int) -> None:
    """``SFTPFile.prefetch`` whose request thread dies quietly when the
    connection drops: the reader sees the failure and reports it in one line;
    paramiko's thread would print a traceback to stderr."""
    raw = cast(Any, handle)
    original = raw._prefetch_thread

    def quiet(*args: Any) -> None:
        with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
            original(*args)

    raw._prefetch_thread = quiet  # an instance attribute: this file only
    handle.prefetch(size, max_concurrent_requests=PREFETCH_REQUESTS)


# -- pipelined streaming -------------------------------------------------------------
#
# One request per round trip (open, fstat, prefetch, fstat, close per file) left
# the link idle most of the time (10 MB/s over loopback).  _Streamer keeps many
# files and many reads in flight on one SFTP session and hashes each file's
# replies in order, as they come.

_HEAD = struct.Struct(">IBI")
_U32 = struct.Struct(">I")
_READ_AT = struct.Struct(">QI")
#: Counted against INFLIGHT_BYTES for a reply that carries no data.
_SMALL_REPLY = 256
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


NOT_REGULAR = "no longer a regular file (not read)"
CHANGED = "changed while being read"


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
                 "hashed", "hashers", "index", "pending", "reads", "redo", "requested",
                 "short", "size", "tries", "waiting")

    def __init__(self, index: int, entry: Entry, full: bytes, algorithms: list[str],
                 tries: int = 1) -> None:
        self.index = index
        self.entry = entry
        self.full = full
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
        self.attrs: _Attrs | None = None
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
        return _StreamFile(self.index, self.entry, self.full, self.algorithms,
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
    same burst (the server answers in order, so the fstat follows the reads).
    It is "changed while being read" unless its bytes end exactly at the listed
    size and that fstat still shows the listed size and mtime, so a file
    replaced after the walk is never hashed as if it were the listed one.

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

# -- pipelined listing ---------------------------------------------------------------

#: A listed name: (name, st_mode, st_size, st_mtime); 0/None where not sent.
_Listed = tuple[str, int, int, int | None]
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


class _Folder:
    __slots__ = ("handle", "items", "rel")

    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.handle: bytes | None = None
        self.items: list[_Listed] = []


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
    folders or ``LIST_ROUND_NAMES`` names, so memory stays bounded, and gives
    the session back with every reply read."""

    def __init__(self, backend: SFTPBackend, top: bytes) -> None:
        self.backend = backend
        self.top = top
        self.budget = _Budget()
        #: Folders known and not listed yet, smallest path first.
        self.todo: list[tuple[tuple[str, ...], str]] = [((), "")]
        #: Listed folders not yet walked: sorted names, or why it failed.
        self.ready: dict[str, list[_Listed] | str] = {}

    def get(self, rel: str) -> list[_Listed] | str:
        """The listing of ``rel`` (which the walk has just reached), or the
        one-line reason it could not be listed."""
        while rel not in self.ready:
            if not self.todo:
                raise AssertionError(f"folder {rel!r} was never queued")
            self.backend._retrying(self._round, self.budget)
        return self.ready.pop(rel)

    def _round(self, generation: int) -> None:
        with self.backend.conn.sftp() as (client, _gen):
            wire = _Wire(client)
            active: dict[str, _Folder] = {}
            try:
                self._pump(client, wire, active)
            except BaseException:
                for folder in active.values():  # listed again on the next round
                    heapq.heappush(self.todo, (_key(folder.rel), folder.rel))
                raise
            finally:
                wire.finish()

    def _pump(self, client: paramiko.SFTPClient, wire: _Wire,
              active: dict[str, _Folder]) -> None:
        expect: dict[int, tuple[_Folder, int]] = {}
        started = names = 0
        while True:
            while (self.todo and len(active) < LIST_AHEAD and started < LIST_ROUND_FOLDERS
                   and names < LIST_ROUND_NAMES):
                rel = heapq.heappop(self.todo)[1]
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
            problem = None
            done = False
            if kind == CMD_STATUS:
                status = _status(client, body)
                if what == CMD_READDIR and status == "eof":
                    done = True
                elif status is None or status == "eof":
                    problem = "unexpected SFTP status reply"
                else:
                    problem = status
            elif what == CMD_OPENDIR and kind == CMD_HANDLE:
                folder.handle = bytes(_string(body))
            elif what == CMD_READDIR and kind == CMD_NAME:
                listed = _parse_names(body)
                names += len(listed)
                folder.items += [(os.fsdecode(name), mode, size, mtime)
                                 for name, mode, size, mtime in listed
                                 if name not in (b".", b"..")]
            else:
                raise paramiko.SSHException(f"unexpected SFTP reply type {kind}")
            if folder.handle is not None:
                handle = _U32.pack(len(folder.handle)) + folder.handle
                if problem is None and not done:
                    expect[wire.request(CMD_READDIR, handle)] = (folder, CMD_READDIR)
                    continue
                expect[wire.request(CMD_CLOSE, handle)] = (folder, CMD_CLOSE)
            del active[folder.rel]
            if problem is not None:
                self.ready[folder.rel] = problem
                continue
            folder.items.sort(key=lambda item: item[0])
            prefix = folder.rel + "/" if folder.rel else ""
            for name, mode, _size, _mtime in folder.items:
                if stat.S_ISDIR(mode):
                    heapq.heappush(self.todo, (_key(prefix + name), prefix + name))
            self.ready[folder.rel] = folder.items
