"""The test servers start on ports found free a moment before; with several
test suites on one machine another server may take such a port first.  The
tests must then still talk to their own server, never to the intruder."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from servers import sshd as sshd_module
from servers import xrootd as xrootd_module


class _Intruder:
    """Another suite's server on a port: it answers every connection with
    ``answer`` and closes it."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            with conn:
                conn.sendall(self.answer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def intruder() -> Iterator[Callable[[bytes], _Intruder]]:
    started: list[_Intruder] = []

    def start(answer: bytes) -> _Intruder:
        started.append(_Intruder(answer))
        return started[-1]
    yield start
    for one in started:
        one.close()


def taken_first(taken: int, find: Callable[..., Any]) -> Callable[..., Any]:
    """``find`` (a free-port finder: one port, or a list), except that the
    first port of its first answer is ``taken``."""
    calls = 0

    def finder(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        found = find(*args)
        if calls > 1:
            return found
        return [taken, *found[1:]] if isinstance(found, list) else taken
    return finder


def test_xrootd_on_a_taken_port_starts_again_on_another(
        intruder: Callable[[bytes], _Intruder], monkeypatch: pytest.MonkeyPatch) -> None:
    # An HTTP server that says 200 to everything.
    taken = intruder(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").port
    monkeypatch.setattr(xrootd_module, "free_port",
                        taken_first(taken, xrootd_module.free_port))
    server = xrootd_module.XRootDServer()
    try:
        server.start()
        assert server.port != taken
        (server.data / "mine.txt").write_bytes(b"mine")
        (server.data / "mine.txt").chmod(0o644)
        answer = requests.get(f"{server.url}/mine.txt", timeout=10)
        assert (answer.status_code, answer.content) == (200, b"mine")
    finally:
        server.cleanup()


def test_sshd_on_a_taken_port_starts_again_on_others(
        intruder: Callable[[bytes], _Intruder], monkeypatch: pytest.MonkeyPatch) -> None:
    taken = intruder(b"SSH-2.0-intruder\r\n").port
    monkeypatch.setattr(sshd_module, "_free_ports",
                        taken_first(taken, sshd_module._free_ports))
    with sshd_module.running_sshd() as server:
        assert taken not in (server.port, server.sftp_only_port)
        for port in (server.port, server.sftp_only_port):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                assert conn.recv(64).startswith(b"SSH-2.0-OpenSSH")  # not the intruder


def test_a_shared_xrootd_that_died_is_started_again_on_its_data() -> None:
    server = xrootd_module.XRootDServer()
    try:
        server.start()
        (server.data / "kept.txt").write_bytes(b"kept")
        (server.data / "kept.txt").chmod(0o644)
        assert server.proc is not None
        server.proc.kill()  # as its segfault does
        server.proc.wait()
        with pytest.warns(xrootd_module.XRootDRestarted, match="had exited"):
            server.ensure_running()
        answer = requests.get(f"{server.url}/kept.txt", timeout=10)
        assert (answer.status_code, answer.content) == (200, b"kept")
    finally:
        server.cleanup()

