"""A real XRootD HTTP server (Debian's ``xrootd-server`` + ``xrootd-server-plugins``)
on loopback, answering ``Want-Digest`` the way dCache does.

XRootD refuses to run as root; under root it is started with ``-R nobody`` and
its data folder lives in a world-readable temporary folder (pytest's own tmp
folders are ``0700``, which ``nobody`` cannot enter).  XRootD cannot be given
port 0, so it is told a port found free a moment before; with several test
suites on one machine another server may take that port first.  Readiness is
therefore polled for a file only this server has; a server that could not bind
its port is started again on another.  A missing binary or a server that dies
otherwise fails the test with the server's log, it never skips.

XRootD keeps computed checksums in the ``user.XrdCks.<algorithm>`` extended
attribute with the file's mtime (in seconds); it recomputes only when the mtime
moved.  :func:`forge_checksum` rewrites that record, which is how a test makes
the server lie about a file whose bytes are intact.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import requests

XROOTD = "/usr/bin/xrootd"
CHECKSUMS = ("adler32", "md5")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def world_readable_tmpdir(prefix: str) -> Path:
    """A temporary folder that a server running as ``nobody`` can read."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def make_readable(root: Path, owner: str | None = None) -> None:
    """Let the server user read everything below ``root`` (tests write as root);
    with ``owner`` (when running as root), hand the tree to that user."""
    ids = None
    if owner and os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        ids = (entry.pw_uid, entry.pw_gid)
    if root.is_file():
        root.chmod(0o644)
        if ids:
            os.chown(root, *ids)
        return
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        if ids:
            os.chown(folder, *ids)
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                os.chmod(full, 0o644)
                if ids:
                    os.chown(full, *ids)


class XRootDRestarted(UserWarning):
    """A shared xrootd died between tests and was started again."""


class _StartAgain(RuntimeError):
    """xrootd died before it answered, in a way a fresh start on another port
    gets past: killed by a signal, or its port taken by another process."""


class XRootDServer:
    """One xrootd process serving ``data`` over HTTP at ``url``."""

    def __init__(self, base: Path | None = None) -> None:
        if not os.path.exists(XROOTD):
            raise RuntimeError(
                f"{XROOTD} is missing: install Debian's xrootd-server and "
                "xrootd-server-plugins (the WebDAV tests need a real XRootD)")
        self.base = base or world_readable_tmpdir("threetwoone-xrootd-")
        self.data = self.base / "data"
        self.admin = self.base / "admin"
        self.data.mkdir(exist_ok=True)
        self.admin.mkdir(exist_ok=True)
        self.data.chmod(0o755)
        self.log = self.admin / "xrootd.log"  # written by the server user
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            # The admin folder must be writable by the server user.
            nobody = pwd.getpwnam("nobody")
            os.chown(self.admin, nobody.pw_uid, nobody.pw_gid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> XRootDServer:
        """Start and wait until HTTP answers.  Debian's xrootd 5.5 now and then
        dies with SIGSEGV while initialising (about 1 start in 50 here), and
        the port it was told may have been taken since it was found free; such
        a start is retried, at most four times, on a fresh port.  A server that
        dies otherwise, or five times, fails the test with its log."""
        for attempt in range(5):
            try:
                return self._start_once()
            except _StartAgain:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def ensure_running(self) -> None:
        """Start the server again, on the same data, if it died since.  Debian's
        xrootd 5.5.3 now and then segfaults in ``XrdLink::setEtext`` (a null
        link, just after "socket closed polling" of a client that hung up:
        three times in half an hour here with several suites at once): one
        crash then failed every later test of the session with "connection
        refused".  A test during which it
        dies still fails; the restart is reported as a warning."""
        if self.proc is not None and self.proc.poll() is None:
            return
        status = None if self.proc is None else self.proc.returncode
        warnings.warn(f"xrootd on {self.url} had exited ({status}): started again",
                      XRootDRestarted, stacklevel=2)
        self.start()

    def adopt(self, root: Path) -> None:
        """Make ``root`` the server's own, as data on a storage server is.

        Not cosmetic: XRootD 5.5 stores each computed checksum in an extended
        attribute of the file; when it may not (a root-owned file), it
        recomputes every time and, after a few hundred such requests, stops
        answering (seen here as a read timeout)."""
        make_readable(root, self.user)

    def _start_once(self) -> XRootDServer:
        self.port = free_port()
        config = self.base / "xrootd.cfg"
        config.write_text(
            f"all.export /\n"
            f"oss.localroot {self.data}\n"
            f"xrd.port any\n"
            f"xrd.protocol XrdHttp:{self.port} libXrdHttp.so\n"
            f"xrootd.chksum {' '.join(CHECKSUMS)}\n"
            f"all.adminpath {self.admin}\n"
            f"all.pidpath {self.admin}\n"
            f"http.listingdeny false\n")
        config.chmod(0o644)
        args = [XROOTD, "-c", str(config), "-l", str(self.log)]
        if os.geteuid() == 0:
            args += ["-R", "nobody"]
        with open(self.base / "xrootd.out", "wb") as out:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Return once this server answers on ``self.port``.  Any HTTP answer
        on the port is not enough: another suite's server that took the port
        (this one then fails to bind it) answers too, and the tests would talk
        to it, reading its files.  Only this server has ``marker``, and what
        it holds."""
        assert self.proc is not None
        token = secrets.token_hex(16)
        marker = self.data / f"ready-{token[:8]}"
        marker.write_text(token)
        marker.chmod(0o644)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(f"{self.url}/{marker.name}", timeout=1).text == token:
                        return
                try:
                    # Doubles as the pause between polls and as the "it died" check.
                    self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                log = self.log_text()
                again = self.proc.returncode < 0 or "address already in use" in log
                raise (_StartAgain if again else RuntimeError)(
                    f"xrootd exited with {self.proc.returncode}:\n{log}")
            self.stop()
            raise RuntimeError(f"xrootd did not answer on {self.url} within "
                               f"{START_TIMEOUT:g} s:\n{self.log_text()}")
        finally:
            marker.unlink(missing_ok=True)

    def log_text(self) -> str:
        logs = [self.base / "xrootd.out", *sorted(self.admin.glob("xrootd.log*"))]
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs if p.exists())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def forge_checksum(path: Path, algorithm: str, digest_hex: str) -> None:
    """Make XRootD report ``digest_hex`` for ``path`` without touching its bytes.

    XrdCksData layout: Name[16], fmTime (int64, the file's mtime in seconds),
    csTime (int32), Rsvd1 (int16), Rsvd2 (int8), Length (uint8), Value[64],
    all big-endian."""
    value = bytes.fromhex(digest_hex)
    mtime = int(os.stat(path).st_mtime)
    record = struct.pack(">16sqihbB64s", algorithm.encode(), mtime, 0, 0, 0, len(value),
                         value)
    os.setxattr(path, f"user.XrdCks.{algorithm}", record)
