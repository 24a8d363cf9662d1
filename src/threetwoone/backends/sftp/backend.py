"""SFTP locations: copies on a backup host reached over SSH (paramiko).

Read-only by construction: the only SFTP requests sent are OPENDIR/READDIR,
STAT/LSTAT/FSTAT, REALPATH, OPEN with the read flag only, READ and CLOSE; the
only commands run are ``xargs -0 TOOL --``, a fixed line with the paths on its
stdin (see :mod:`..ssh.remote_hash`).  Nothing is ever written on the remote host.

How a file's content is established, per file and reported in ``via``:

* ``remote xxhsum -H2`` (or ``sha256sum``, ``md5sum``...): the host hashes its
  own disk, many files per exec; used when the probe proved the tool exists and
  computes the requested algorithm;
* ``sftp stream``: the bytes are read over SFTP and hashed here, many files and
  reads in flight on one session (see :mod:`.streamer`);
  used when there is no tool, no shell (``ForceCommand internal-sftp``), when
  ``remote_hash: false``, and for every file the tool did not answer for.

Symlinks: SFTP version 3 opens files (and the host's tool reads them) through
symlinks, so every file and folder read by path is checked afterwards: its path
must still resolve (REALPATH) to its place below the copy's real folder, as when
the walk began, and still be no symlink (LSTAT), else it is not the copy's and
its content is not trusted (see :func:`.streamer.misplaced`).

Faults: anything before the copy is reached is :class:`LocationUnreachable`; a
connection lost later is retried once on a new connection, then
:class:`CopyFailed`; one unreadable file is a ``HashResult`` with ``error``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, NoReturn, TypeVar, cast

import paramiko
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_LSTAT,
    CMD_NAME,
    CMD_REALPATH,
    CMD_STATUS,
)

from ..addresses import host_aliases
from ..errors import CopyFailed, LocationUnreachable, NotAFolder
from ..interface import Backend, HashRequest, HashResult
from ..listed import Entry, EntryKind, FolderListing, RootInfo, WalkProblem
from ..parallel import batches, run_bounded
from ..ssh import remote_hash
from ..ssh.config import Target, resolve_target
from ..ssh.connect import describe
from ..ssh.pool import MAX_CHANNELS, Connection, acquire, release
from ..ssh.remote_hash import TOOLS, Item, Tool
from ..streams import buffered
from .lister import _Listed, _Lister
from .retry import _Budget, _Lost
from .streamer import SWAPPED, _listing_change, _Streamer, _StreamFile, misplaced, resolved
from .wire import _U32, _attributes, _Attrs, _join, _status, _Wire, sftp_error

T = TypeVar("T")

#: Streaming: files per task (one SFTP session each, requests pipelined).
STREAM_BATCH_FILES = 512
STREAM_BATCH_BYTES = 256 * 1024 * 1024
#: open_read: read requests kept in flight (paramiko prefetch).
PREFETCH_REQUESTS = 128
#: A remote hash of a big file prints nothing until done: allow this slow a disk.
SLOWEST_REMOTE_DISK = 8 * 1024 * 1024
_CONNECTION_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ENOTCONN,
                      errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH}


class SFTPBackend(Backend):
    kind = "sftp"
    #: Files are hashed on channels of one connection: more wait for a channel.
    max_workers = MAX_CHANNELS

    def __init__(self, name: str, location: Any) -> None:
        super().__init__(name, location)
        self._target: Target | None = None
        self._conn: Connection | None = None
        self._closed = False
        #: copy path -> its folder on the host, symlinks resolved, when it was listed
        self._listed_roots: dict[str, bytes] = {}

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
        """The copy's folder, named by its path with symlinks resolved on the
        host and the host it is on: as spelt (the identity the catalog keeps),
        as each address the host name reaches, and as the key the server
        proved it holds.  Two locations reaching one folder by other names
        (``localhost`` and ``127.0.0.1``, a DNS alias, a second network
        interface) share a name, and count once."""
        full = self.full_path(path)

        def look(client: paramiko.SFTPClient) -> paramiko.SFTPAttributes | None:
            try:
                return client.stat(full)
            except OSError as exc:
                if getattr(exc, "errno", None) == errno.ENOENT:
                    return None
                raise

        try:
            attrs = self._sftp_call(look, _Budget())
        except OSError as exc:
            raise CopyFailed(f"{self.target.label}: cannot stat {os.fsdecode(full)}: "
                             f"{sftp_error(exc)}") from None
        if attrs is None:
            return None
        if not stat.S_ISDIR(attrs.st_mode or 0):
            raise NotAFolder(f"{self.target.label}: {os.fsdecode(full)} is a file, not a "
                             "folder")
        resolved_path = self._real_path(full, _Budget())
        real = os.fsdecode(full if isinstance(resolved_path, str) else resolved_path)
        target = self.target
        names = [f"sftp-key:{self._host_key()}:{real}"]
        if not (target.proxy_command or target.proxy_jump):
            # Through a proxy, the name is resolved at the far end, not here.
            names += [f"sftp:{alias}:{real}"
                      for alias in host_aliases(target.hostname, target.port)]
        return RootInfo(identity=f"sftp:{target.hostname.lower()}:{target.port}:{real}",
                        aliases=tuple(names))

    def _host_key(self) -> str:
        """The type and fingerprint of the key the server proved it holds."""
        try:
            transport, _generation = self.conn.transport
            key = transport.get_remote_server_key()
        except (EOFError, paramiko.SSHException) as exc:
            raise CopyFailed(f"{self.target.label}: {describe(exc)}") from None
        return f"{key.get_name()} {key.fingerprint}"

    def storage_identity(self, path: str, root: RootInfo) -> dict[str, str]:
        """The settings, the host as ``~/.ssh/config`` resolves it, and the
        fingerprint of the host key the server proved it holds: another machine
        behind the same name is other storage."""
        facts = super().storage_identity(path, root)
        target = self.target
        facts["address"] = f"{target.user}@{target.hostname.lower()}:{target.port}"
        facts["host_key"] = self._host_key()
        return facts

    def list_folder(self, path: str) -> FolderListing | None:
        if self.stat_root(path) is None:
            return None
        top = self.full_path(path)
        real = self._real_path(top, _Budget())
        listing = real if isinstance(real, str) else \
            _Lister(self, top, real, recurse=False).get("")
        if isinstance(listing, str):
            raise CopyFailed(f"{self.target.label}: cannot list {path or '/'}: {listing}")
        folders: list[str] = []
        entries: list[Entry] = []
        for name, mode, size, mtime in listing:
            if stat.S_ISDIR(mode):
                folders.append(name)
            elif stat.S_ISREG(mode):
                entries.append(Entry(name, EntryKind.FILE, size,
                                     mtime * 1_000_000_000 if mtime is not None else None))
            else:
                entries.append(Entry(name, EntryKind.SYMLINK if stat.S_ISLNK(mode)
                                     else EntryKind.SPECIAL))
        return FolderListing(tuple(folders), tuple(entries))

    def walk(self, path: str) -> Iterator[Entry | WalkProblem]:
        top = self.full_path(path)
        real = self._real_path(top, _Budget())
        if isinstance(real, str):
            yield WalkProblem("", real)
            return
        self._listed_roots[path] = real
        lister = _Lister(self, top, real)
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
        """Read ``relpath``; closing it checks that what was read is the copy's
        own file (no symlink led elsewhere), else it raises OSError."""
        folder = self.full_path(path)
        real = self._copy_folder(path, folder, _Budget())
        full = _join(folder, relpath)
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
            [problem] = self._placement([(full, _join(real, relpath))], _Budget())
            if problem is not None:
                raise OSError(errno.ELOOP, problem)

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

    def _real_path(self, folder: bytes, budget: _Budget) -> bytes | str:
        """``folder`` as an absolute path on the host, symlinks resolved (SFTP
        REALPATH), or why the server cannot say."""
        def resolve(client: paramiko.SFTPClient) -> bytes | str:
            wire = _Wire(client)
            try:
                rid = wire.request(CMD_REALPATH, _U32.pack(len(folder)) + folder)
                kind, got, body = wire.reply()
            finally:
                wire.finish()
            if got != rid:
                raise paramiko.SSHException(f"SFTP reply to a request never sent ({got})")
            if kind == CMD_STATUS:
                return _status(client, body) or "eof"
            real = resolved(body) if kind == CMD_NAME else None
            if real is None or not real.startswith(b"/"):
                return "the server cannot say where it is (SFTP REALPATH)"
            return real

        try:
            return self._sftp_call(resolve, budget)
        except OSError as exc:
            return sftp_error(exc)

    def _copy_folder(self, path: str, folder: bytes, budget: _Budget) -> bytes:
        """The copy's folder on the host, symlinks resolved: the same as when it
        was listed, else CopyFailed (it was swapped since, e.g. for a symlink)."""
        real = self._real_path(folder, budget)
        shown = os.fsdecode(folder) or "."
        if isinstance(real, str):
            raise CopyFailed(f"{self.target.label}: {shown}: {real}")
        listed = self._listed_roots.get(path, real)
        if real != listed:
            raise CopyFailed(f"{self.target.label}: {shown} is no longer the folder that was "
                             f"listed ({os.fsdecode(listed)}; now {os.fsdecode(real)})")
        return real

    def _hash(self, path: str, listed: Iterable[Entry], request: HashRequest
              ) -> Iterator[HashResult]:
        """Files in batches: names to a hashing tool on the host where one
        answers (see remote_hash.py), the rest read over SFTP; on up to
        ``max_workers`` channels of the one connection."""
        entries = listed if isinstance(listed, Sequence) else list(listed)
        folder = self.full_path(path)
        algorithms = list(request.algorithms)
        budget = _Budget()
        if not entries:
            return
        # Every file is read by path, then checked to resolve below this folder.
        real = self._copy_folder(path, folder, budget)
        tools = self._remote_tools(algorithms, budget)
        stream: Sequence[Entry] = entries
        remote: Iterator[list[Item]] = iter(())
        if tools:
            items = [Item(i, _join(real, e.path), e.size) for i, e in enumerate(entries)]
            # Paths a tool's output could not tell apart are read over SFTP.
            stream = [entries[item.index] for item in items
                      if not remote_hash.hashable(item.path)]
            remote = remote_hash.batches(item for item in items
                                         if remote_hash.hashable(item.path))
        streamed = (functools.partial(self._stream_batch, folder, real, batch, algorithms,
                                      budget, request)
                    for batch in batches(stream, STREAM_BATCH_BYTES, STREAM_BATCH_FILES))
        workers = request.workers
        if workers == 1:
            yield from self._remote_pipeline(folder, real, entries, remote, tools,
                                             algorithms, budget, request)
            for task in streamed:
                yield from task()
            return
        tasks = itertools.chain((functools.partial(self._remote_batch, folder, real, entries,
                                                   batch, tools, algorithms, budget, request)
                                 for batch in remote), streamed)
        yield from run_bounded(tasks, workers, "sftp")

    def _remote_pipeline(self, folder: bytes, real: bytes, entries: Sequence[Entry],
                         remote: Iterator[list[Item]], tools: list[Tool],
                         algorithms: list[str], budget: _Budget,
                         request: HashRequest) -> Iterator[HashResult]:
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
                    checking = checker.submit(self._remote_results, folder, real, entries,
                                              batch, digests, tools, algorithms, budget,
                                              request)
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

    def _remote_batch(self, folder: bytes, real: bytes, entries: Sequence[Entry],
                      batch: list[Item], tools: list[Tool], algorithms: list[str],
                      budget: _Budget, request: HashRequest) -> list[HashResult]:
        digests = self._remote_hash(batch, tools, budget)
        return self._remote_results(folder, real, entries, batch, digests, tools, algorithms,
                                    budget, request)

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

    def _remote_results(self, folder: bytes, real: bytes, entries: Sequence[Entry],
                        batch: list[Item], digests: list[dict[str, str]], tools: list[Tool],
                        algorithms: list[str], budget: _Budget,
                        request: HashRequest) -> list[HashResult]:
        """Results for a hashed batch: a digest counts only for a file still as
        listed, at its place; every other file is read over SFTP."""
        # The tool read whatever each file held when it ran, through any
        # symlink: its digest counts only if the file is still the one listed
        # (size and mtime, as the streamed path checks with its FSTAT) and its
        # path still resolves to itself (the item's path is below the copy's
        # real folder).  Any other is read again, and the read says why not.
        answered = [i for i, found in enumerate(digests) if len(found) == len(tools)]
        problems = self._placement([(batch[i].path, batch[i].path) for i in answered],
                                   budget, [entries[batch[i].index] for i in answered])
        for i, problem in zip(answered, problems, strict=True):
            if problem is not None:
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
                request.done(entry.size)
            else:
                fallback.append(entry)
        if fallback:
            results += self._stream_batch(folder, real, fallback, algorithms, budget, request)
        return results

    def _placement(self, files: list[tuple[bytes, bytes]], budget: _Budget,
                   listed: Sequence[Entry] | None = None) -> list[str | None]:
        """For each file (its path, where that must resolve), why it is not the
        copy's own (see :func:`.streamer.misplaced`), or None.  With ``listed``
        (the entries as listed), also why it is no longer a regular file of its
        listed size and mtime.

        Pipelined on one session: an LSTAT of each file (a symlink there is not
        the copy's file) and a REALPATH of each folder they are in (a symlink
        at or above a folder led elsewhere): on the 20k-file tree a REALPATH
        per file cost 12% more wall time, one per folder 2%."""
        if not files:
            return []
        folders: dict[bytes, bytes] = {}  # folder as read -> where it must resolve
        for path, where in files:
            folders.setdefault(_folder_of(path), _folder_of(where))

        def look(client: paramiko.SFTPClient) -> list[str | None]:
            wire = _Wire(client)
            try:
                expect: dict[int, tuple[int, int]] = {}
                for index, (path, _where) in enumerate(files):
                    expect[wire.request(CMD_LSTAT, _U32.pack(len(path)) + path)] = (
                        index, CMD_LSTAT)
                order = list(folders)
                for index, folder in enumerate(order):
                    expect[wire.request(CMD_REALPATH, _U32.pack(len(folder)) + folder)] = (
                        index, CMD_REALPATH)
                attrs: list[_Attrs | None] = [None] * len(files)
                failed: list[str | None] = [None] * len(files)
                wrong: dict[bytes, str | None] = {}
                while expect:
                    kind, rid, body = wire.reply()
                    index, what = expect.pop(rid, (-1, 0))
                    if index < 0:
                        raise paramiko.SSHException(
                            f"SFTP reply to a request never sent ({rid})")
                    if what == CMD_REALPATH:
                        folder = order[index]
                        wrong[folder] = (
                            (_status(client, body) or "eof") if kind == CMD_STATUS
                            else misplaced(resolved(body), folders[folder])
                            if kind == CMD_NAME else _unexpected(kind))
                    elif kind == CMD_STATUS:
                        failed[index] = _status(client, body) or "eof"
                    elif kind == CMD_ATTRS:
                        attrs[index] = _attributes(body)
                    else:
                        _unexpected(kind)
                problems: list[str | None] = []
                for i, (path, _where) in enumerate(files):
                    found = attrs[i]
                    link = found is not None and stat.S_ISLNK(found.mode)
                    problems.append(
                        failed[i] or wrong[_folder_of(path)] or (SWAPPED if link else None)
                        or (None if listed is None else _listing_change(found, listed[i])))
                return problems
            finally:
                wire.finish()

        try:
            return self._sftp_call(look, budget)
        except OSError as exc:
            return [sftp_error(exc)] * len(files)

    def _stream_batch(self, folder: bytes, real: bytes, entries: Sequence[Entry],
                      algorithms: list[str], budget: _Budget,
                      request: HashRequest) -> list[HashResult]:
        """Stream ``entries`` on one SFTP session, many requests in flight.  After
        a lost connection only the files not finished yet are read again."""
        results: dict[int, HashResult] = {}

        def finished(file: _StreamFile) -> None:
            result = file.result()
            results[file.index] = result
            if result.error is None:
                request.done(result.size)

        def operation(generation: int) -> None:
            files = (_StreamFile(i, entry, _join(folder, entry.path), _join(real, entry.path),
                                 algorithms)
                     for i, entry in enumerate(entries) if i not in results)
            with self.conn.sftp() as (client, _gen):
                _Streamer(client, files, finished).run()

        self._retrying(operation, budget)
        return [results[i] for i in range(len(entries))]

def _folder_of(path: bytes) -> bytes:
    """The folder a file's path is in, as SFTP takes it."""
    head, slash, _name = path.rpartition(b"/")
    return head or (slash or b".")


def _unexpected(kind: int) -> NoReturn:
    raise paramiko.SSHException(f"unexpected SFTP reply type {kind}")


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
