"""One shared connection per host and account: every location on the same
host and account uses one TCP connection and one SSH transport, and workers
open a bounded number of channels (SFTP sessions, commands) on it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import paramiko

from .config import Target
from .connect import MAX_PACKET, WINDOW_SIZE, _open, _Opened

#: OpenSSH allows 10 sessions per connection (MaxSessions); stay below.
MAX_CHANNELS = 8


class Connection:
    """One SSH transport to a host, shared by the locations that use it, with a
    bounded number of channels and one reconnect per failure generation."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._opened: _Opened | None = None
        self.generation = 0
        self.channels = threading.BoundedSemaphore(MAX_CHANNELS)
        self._idle_sftp: list[tuple[int, paramiko.SFTPClient]] = []
        #: Whether the host can hash an algorithm itself, by algorithm (each
        #: probed once, when first needed).
        self.remote_tools: dict[str, bool] = {}
        self.users = 0

    # -- life cycle ---------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            if self._opened is None or not self._opened.transport.is_active():
                self._replace()

    def _replace(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None
        self._idle_sftp.clear()
        self._opened = _open(self.target)
        self.generation += 1

    def reconnect(self, seen_generation: int) -> None:
        """Open a new transport, unless another worker already did since
        ``seen_generation``.  Raise LocationUnreachable if the host is gone."""
        with self._lock:
            if self.generation != seen_generation and self._opened is not None \
                    and self._opened.transport.is_active():
                return
            self._replace()

    def drop(self, generation: int) -> None:
        """Give up on a transport that stopped answering (a timeout)."""
        with self._lock:
            if self.generation == generation and self._opened is not None:
                self._opened.transport.close()

    def close(self) -> None:
        with self._lock:
            for _gen, client in self._idle_sftp:
                with contextlib.suppress(Exception):
                    client.close()
            self._idle_sftp.clear()
            if self._opened is not None:
                self._opened.close()
                self._opened = None

    def is_active(self) -> bool:
        opened = self._opened
        return opened is not None and opened.transport.is_active()

    @property
    def transport(self) -> tuple[paramiko.Transport, int]:
        with self._lock:
            if self._opened is None:
                raise EOFError("not connected")
            return self._opened.transport, self.generation

    # -- channels -------------------------------------------------------------
    @contextlib.contextmanager
    def sftp(self) -> Iterator[tuple[paramiko.SFTPClient, int]]:
        """An SFTP session (a channel) for one worker, reused when returned."""
        with self.channels:
            client: paramiko.SFTPClient | None = None
            with self._lock:
                while self._idle_sftp:
                    gen, idle = self._idle_sftp.pop()
                    if gen == self.generation:
                        client, generation = idle, gen
                        break
            if client is None:
                transport, generation = self.transport
                client = paramiko.SFTPClient.from_transport(
                    transport, window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET)
                if client is None:
                    raise EOFError("the server refused an SFTP session")
            channel = client.get_channel()
            if channel is not None:
                channel.settimeout(self.target.timeout)
            ok = False
            try:
                yield client, generation
                ok = True
            finally:
                if ok:
                    with self._lock:
                        if generation == self.generation:
                            self._idle_sftp.append((generation, client))
                            client = None
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()

    def run(self, command: bytes, timeout: float, stdin: bytes = b""
            ) -> tuple[int, bytes, bytes]:
        """Run ``command`` with ``stdin`` as its input; (exit status or -1,
        stdout, stderr).  ``timeout`` bounds each wait, not the whole command.
        ``stdin`` is sent before any output is read: the output must fit in
        the channel window (WINDOW_SIZE).  A command that ends before taking
        all of ``stdin`` has answered (its status and output are returned)."""
        with self.channels:
            transport, _generation = self.transport
            channel = transport.open_session(timeout=self.target.timeout)
            try:
                channel.settimeout(timeout)
                channel.exec_command(command)
                if stdin:
                    try:
                        channel.sendall(stdin)
                    except OSError:
                        # "Socket is closed": the command ended before it took
                        # all of its input (a tool that quit, a ForceCommand
                        # internal-sftp that refused the probe's input).  It
                        # said so with an EOF, which a dropped connection
                        # never sends: its output and exit status answer.
                        if not channel.eof_received:
                            raise
                channel.shutdown_write()
                out = bytearray()
                err = bytearray()
                while True:
                    chunk = channel.recv(1 << 16)
                    while channel.recv_stderr_ready():
                        err += channel.recv_stderr(1 << 16)
                    if not chunk:
                        break
                    out += chunk
                while True:
                    chunk = channel.recv_stderr(1 << 16)
                    if not chunk:
                        break
                    err += chunk
                # -1 when the channel closed without a status (killed, dropped).
                return channel.recv_exit_status(), bytes(out), bytes(err)
            finally:
                channel.close()


_POOL: dict[tuple[Any, ...], Connection] = {}
_POOL_LOCK = threading.Lock()


def acquire(target: Target) -> Connection:
    """The shared connection for ``target``, opened (LocationUnreachable if not)."""
    with _POOL_LOCK:
        connection = _POOL.get(target.key())
        if connection is None:
            connection = _POOL[target.key()] = Connection(target)
        connection.users += 1
    try:
        connection.open()
    except BaseException:
        release(connection)
        raise
    return connection


def release(connection: Connection) -> None:
    with _POOL_LOCK:
        connection.users -= 1
        if connection.users > 0:
            return
        if _POOL.get(connection.target.key()) is connection:
            del _POOL[connection.target.key()]
    connection.close()
