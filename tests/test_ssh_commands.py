"""Commands run on an SSH host (the remote hash tools and their probe), against
a real OpenSSH sshd (servers/sshd.py): a command that ends before it took all
of its input has answered; the connection under it is not lost."""

from __future__ import annotations

import pytest

from backends.conftest_sftp import make_location
from servers.sshd import SSHHome, SSHServer
from threetwoone.backends.sftp import SFTPBackend

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

pytest_plugins = ["servers.sftp_plugin"]

#: More than sshd's window for a session channel (2 MiB): a command that never
#: reads its input has exited, and its channel is closed, while this is sent.
MORE_THAN_A_WINDOW = b"x" * (16 << 20)


def test_a_command_that_ends_before_its_input_is_sent_has_answered(
        sshd: SSHServer, ssh_home: SSHHome) -> None:
    ssh_home.trust(sshd.known_hosts())
    backend = SFTPBackend("b", make_location(sshd, sshd.data_dir("exec")))
    backend.connect()
    try:
        conn = backend.conn
        generation = conn.generation
        assert conn.run(b"echo early; exit 3", 10, MORE_THAN_A_WINDOW)[:2] == (3, b"early\n")
        # Not taken for a dropped connection: no reconnect spent on it.
        assert conn.generation == generation and conn.is_active()
        assert conn.run(b"cat >/dev/null; echo all", 10, MORE_THAN_A_WINDOW)[:2] == (0, b"all\n")
    finally:
        backend.close()


@pytest.mark.parametrize("port", ["shell", "sftp-only"])
def test_probing_for_hash_tools_spends_no_reconnect(
        sshd: SSHServer, ssh_home: SSHHome, port: str) -> None:
    """On an account with ``ForceCommand internal-sftp`` the probe's command
    is not run; whether sftp closes the channel before or after the probe's
    input is sent, that is "no tool", and the one reconnect an operation may
    spend is left for a connection that really drops."""
    ssh_home.trust(sshd.known_hosts())
    root = sshd.data_dir("probe")
    (root / "ds").mkdir(exist_ok=True)
    (root / "ds" / "f").write_bytes(b"data")
    backend = SFTPBackend("b", make_location(sshd, root, sftp_only=port == "sftp-only"))
    backend.connect()
    try:
        generation = backend.conn.generation
        entries = [e for e in backend.walk("ds") if getattr(e, "path", None) == "f"]
        [result] = backend.hash_files("ds", entries, ["sha256"])  # type: ignore[arg-type]
        assert result.error is None and result.size == 4
        assert backend.conn.generation == generation
    finally:
        backend.close()
