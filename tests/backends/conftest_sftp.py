"""SFTP fixtures for the backend tests: a real OpenSSH sshd (see servers/sshd.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from servers.sshd import SSHHome, SSHServer, ssh_home, sshd, sshd_private, sshd_session
from threetwoone.backends.sftp import SFTPBackend
from threetwoone.inventory import Location

__all__ = ["SftpFactory", "sftp_backend", "ssh_home", "sshd", "sshd_private", "sshd_session",
           "trusted_home"]

SftpFactory = Callable[..., SFTPBackend]


def make_location(server: SSHServer, root: Path | str, *, sftp_only: bool = False,
                  **settings: Any) -> Location:
    values: dict[str, Any] = {
        "kind": "sftp", "host": "127.0.0.1",
        "port": server.sftp_only_port if sftp_only else server.port,
        "user": server.user, "root": str(root), "identity_file": str(server.client_key),
        "media": "disk", "site": "remote", "timeout": 10}
    values.update(settings)
    values = {k: v for k, v in values.items() if v is not None}
    return Location(name="backup", kind="sftp", media="disk", site="remote", settings=values)


@pytest.fixture
def trusted_home(ssh_home: SSHHome, sshd: SSHServer) -> SSHHome:
    """A client home whose known_hosts trusts the test server (both ports)."""
    ssh_home.trust(sshd.known_hosts())
    return ssh_home


@pytest.fixture
def sftp_backend(sshd: SSHServer, trusted_home: SSHHome) -> Iterator[SftpFactory]:
    """Connected backends on the test server, closed after the test."""
    opened: list[SFTPBackend] = []

    def factory(root: Path | str, *, server: SSHServer | None = None, connect: bool = True,
                **settings: Any) -> SFTPBackend:
        backend = SFTPBackend("backup", make_location(server or sshd, root, **settings))
        opened.append(backend)
        if connect:
            backend.connect()
        return backend

    yield factory
    for backend in opened:
        backend.close()
