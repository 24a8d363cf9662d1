"""A real OpenSSH ``sshd`` on 127.0.0.1 for the SFTP tests.

Two ports on one daemon, with generated host keys and a throwaway config:

* ``port``: a normal account with a POSIX shell (remote hashing possible);
* ``sftp_only_port``: ``Match LocalPort ... ForceCommand internal-sftp``, no
  shell at all, so every hash must be streamed.

When the tests run as root, sshd runs as root and the login account is a
dedicated unprivileged user (created once with ``useradd``), because root
reads every file and a "permission denied" test would prove nothing.  When
they run as an ordinary user, sshd runs as that user and logs in as it.

Never skipped: a missing ``/usr/sbin/sshd`` fails with the command that
installs it.  Readiness is awaited in sshd's log (it listens on both ports
itself: another sshd may have taken one since it was found free) and by
connecting and reading the SSH banner.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
TEST_USER = "t321-audit"
TEST_HOME = "/var/lib/t321-audit"
#: Login shells an audit account may have; the remote hash command must mean
#: the same to each (Debian packages of the same name, but dash's is /bin/dash).
SHELLS = {"sh": "/bin/sh", "bash": "/bin/bash", "dash": "/bin/dash", "zsh": "/usr/bin/zsh",
          "fish": "/usr/bin/fish", "tcsh": "/usr/bin/tcsh"}


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary) or (binary if os.path.isabs(binary) and
                                    os.access(binary, os.X_OK) else None)
    if not path:
        pytest.fail(f"{binary} is missing: install it with "
                    f"`apt-get install -y {package}` (scripts/test.sh does this)",
                    pytrace=False)
    return path


def _keygen(path: Path, keytype: str, comment: str) -> str:
    """Generate a key pair without a passphrase; return the public key line."""
    args = [_require("ssh-keygen", "openssh-client"), "-q", "-t", keytype, "-N", "",
            "-C", comment, "-f", str(path)]
    if keytype == "rsa":
        args[4:4] = ["-b", "2048"]
    subprocess.run(args, check=True, capture_output=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def _account(name: str, home: str, shell: str) -> str:
    """An unprivileged system account (created once) with ``shell`` as login shell."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        # '*' as password: no password login, but not a locked account (sshd
        # refuses key logins to locked accounts when UsePAM is off).
        subprocess.run(["useradd", "--system", "--create-home", "--home-dir", home,
                        "--shell", shell, "--password", "*", name],
                       check=True, capture_output=True)
    else:
        if entry.pw_shell != shell:
            subprocess.run(["usermod", "--shell", shell, name], check=True,
                           capture_output=True)
    return name


def _login_user() -> str:
    if os.geteuid() != 0:
        return getpass.getuser()
    return _account(TEST_USER, TEST_HOME, "/bin/sh")


def shell_account(shell: str) -> str:
    """An account whose login shell is ``shell`` (a key of SHELLS), allowed on
    every test server.  Needs root: one account cannot log in as another."""
    if os.geteuid() != 0:
        pytest.fail("login shell tests create accounts: run them as root (CI does)",
                    pytrace=False)
    _require(SHELLS[shell], "dash" if shell == "sh" else shell)
    return _account(f"t321-{shell}", f"/var/lib/t321-{shell}", SHELLS[shell])


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (per-connection sshd children, sessions)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class SSHServer:
    """A running sshd; see the module docstring."""

    workdir: Path
    user: str
    host_keys: dict[str, str] = field(default_factory=dict)
    client_key: Path = Path()
    wrong_key: Path = Path()
    port: int = 0
    sftp_only_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "sshd.log"

    def data_dir(self, name: str) -> Path:
        """A folder the login user can read (tmp_path is root-only under root)."""
        path = self.workdir / "data" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def known_hosts(self, port: int | None = None, keytypes: tuple[str, ...] = ("ed25519",),
                    host: str = "127.0.0.1") -> str:
        """known_hosts lines trusting this server's keys (as ssh-keyscan would)."""
        lines = []
        for port_ in ([port] if port else [self.port, self.sftp_only_port]):
            name = host if port_ == 22 else f"[{host}]:{port_}"
            for keytype in keytypes:
                lines.append(f"{name} {self.host_keys[keytype]}\n")
        return "".join(lines)

    def start(self, ports: tuple[int, int] | None = None) -> None:
        """Start the daemon on free ports, or on ``ports`` (shell, sftp-only)."""
        for _attempt in range(5):
            self.port, self.sftp_only_port = ports or _free_ports(2)
            self._write_config()
            self.log.write_bytes(b"")
            self.process = subprocess.Popen(
                [SSHD, "-D", "-f", str(self.workdir / "sshd_config"), "-E", str(self.log)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_ready():
                return
            assert self.process.stderr is not None
            error = self.process.stderr.read().decode(errors="replace")
            if "Address already in use" not in error + self.log.read_text(errors="replace"):
                pytest.fail(f"sshd did not start: {error.strip()} "
                            f"{self.log.read_text(errors='replace').strip()}", pytrace=False)
        pytest.fail("sshd did not start: no free port after 5 attempts", pytrace=False)

    def _wait_ready(self, deadline: float = 20.0) -> bool:
        """True once sshd says it listens on both ports and both answer with an
        SSH banner; False if it exited, or could not bind one of them (another
        process took the port since it was found free: ``start`` tries others).
        A banner alone proves nothing: another suite's sshd on a port taken
        from this one sends one too, and the tests would log in there."""
        assert self.process is not None
        end = time.monotonic() + deadline
        pending = {self.port, self.sftp_only_port}
        while pending and time.monotonic() < end:
            log = self.log.read_text(errors="replace")
            if "Bind to port" in log:  # it serves the other port only
                self.process.kill()
                self.process.wait()
                return False
            for port in list(pending):
                if f"Server listening on 127.0.0.1 port {port}." not in log:
                    continue  # not bound by this sshd (yet)
                with contextlib.suppress(OSError), \
                        socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                    sock.settimeout(5)
                    if sock.recv(8).startswith(b"SSH-2.0"):
                        pending.discard(port)
            if pending:
                # Poll: did sshd exit (then fail now) or is it still binding?
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.02)
                if self.process.poll() is not None:
                    return False
        if pending:
            pytest.fail(f"sshd did not answer on {sorted(pending)} within {deadline:g}s; "
                        f"log: {self.log.read_text(errors='replace')}", pytrace=False)
        return True

    def _write_config(self) -> None:
        config = f"""\
ListenAddress 127.0.0.1:{self.port}
ListenAddress 127.0.0.1:{self.sftp_only_port}
HostKey {self.workdir}/host_ed25519
HostKey {self.workdir}/host_rsa
PidFile {self.workdir}/sshd.pid
AuthorizedKeysFile {self.workdir}/authorized_keys
AllowUsers {self.user} t321-*
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PrintMotd no
MaxSessions 20
MaxStartups 50
LogLevel VERBOSE
AllowTcpForwarding yes
Subsystem sftp internal-sftp
Match LocalPort {self.sftp_only_port}
    ForceCommand internal-sftp
    AllowTcpForwarding no
"""
        (self.workdir / "sshd_config").write_text(config)

    def reinstall(self) -> None:
        """As a reinstalled host: new host keys, the daemon back on the same
        ports (the same address), the files untouched."""
        self.stop()
        for keytype in ("ed25519", "rsa"):
            path = self.workdir / f"host_{keytype}"
            path.unlink()
            path.with_name(path.name + ".pub").unlink()
            self.host_keys[keytype] = _keygen(path, keytype, "host")
        self.start((self.port, self.sftp_only_port))

    def kill_sessions(self) -> int:
        """SIGKILL the per-connection processes: every open connection drops
        (as when a link dies), the listener stays up.  Return how many."""
        assert self.process is not None
        victims = _descendants(self.process.pid)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(victims)

    def stop(self) -> None:
        """Kill the daemon and every connection it serves."""
        if self.process is None:
            return
        # Freeze the listener first, so no connection is forked while we look
        # for its children (they would outlive it as orphans).
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGSTOP)
        for pid in _descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()


def start_sshd() -> SSHServer:
    _require(SSHD, "openssh-server")
    user = _login_user()
    workdir = Path(tempfile.mkdtemp(prefix="t321-sshd-"))
    workdir.chmod(0o755)  # the login user must reach its data and authorized_keys
    server = SSHServer(workdir=workdir, user=user)
    server.host_keys["ed25519"] = _keygen(workdir / "host_ed25519", "ed25519", "host")
    server.host_keys["rsa"] = _keygen(workdir / "host_rsa", "rsa", "host")
    # A key the server does not have, to test "changed host key".
    server.host_keys["other-ed25519"] = _keygen(workdir / "other_ed25519", "ed25519", "other")
    keys = workdir / "client"
    keys.mkdir()
    client_pub = _keygen(keys / "id_ed25519", "ed25519", "t321-client")
    _keygen(keys / "wrong_ed25519", "ed25519", "t321-wrong")
    server.client_key = keys / "id_ed25519"
    server.wrong_key = keys / "wrong_ed25519"
    (workdir / "authorized_keys").write_text(client_pub + "\n")
    (workdir / "authorized_keys").chmod(0o644)
    if os.geteuid() == 0:
        # sshd's privilege separation directory (the Debian service creates it).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    server.start()
    return server


@contextlib.contextmanager
def running_sshd() -> Iterator[SSHServer]:
    """A started server, stopped and removed on exit (for fixtures anywhere)."""
    server = start_sshd()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def sshd_session() -> Iterator[SSHServer]:
    with running_sshd() as server:
        yield server


@pytest.fixture
def sshd(sshd_session: SSHServer) -> SSHServer:
    """The shared server, restarted if a previous test stopped it."""
    if sshd_session.process is None or sshd_session.process.poll() is not None:
        sshd_session.start()
    return sshd_session


@pytest.fixture
def sshd_private() -> Iterator[SSHServer]:
    """A server of its own, for tests that kill it."""
    with running_sshd() as server:
        yield server


@dataclass
class SSHHome:
    """An isolated ``~`` for the client: ~/.ssh/config, known_hosts, keys."""

    home: Path

    @property
    def ssh(self) -> Path:
        return self.home / ".ssh"

    def trust(self, text: str) -> None:
        with (self.ssh / "known_hosts").open("a") as handle:
            handle.write(text)

    def config(self, text: str) -> None:
        (self.ssh / "config").write_text(text)


def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SSHHome:
    """HOME points to an empty tmp home without ssh-agent, so the user's real
    keys and known_hosts never leak into a test."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return SSHHome(home)


@pytest.fixture
def ssh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SSHHome:
    return isolated_home(tmp_path, monkeypatch)
