"""A real WebDAV server without server-side digests: WsgiDAV on cheroot, with
HTTP basic auth, optionally TLS, in its own process (so a test can stop it in
the middle of an audit).

Run as a script it serves ``--root`` on 127.0.0.1 at a port the kernel picks
and prints ``PORT <n>`` once it listens; :class:`WsgiDAVServer` reads that
line, so readiness needs no polling at all.  The password comes from the
environment variable named by ``--password-env`` (never on the command line).

Two options produce what a plain WsgiDAV cannot:

* ``--pool``: GET and HEAD of files answer ``307`` to a second listener (the
  "pool", like dCache's doors and pools) that serves the bytes only with the
  one-time ``?pool-ticket=`` the door put in the redirect, and no credentials.
* ``--fail-gets N``: the first N GET requests answer ``503`` (a busy server).
* ``--cut-gets N``: the first N GET requests stop half-way through the body.
* ``--request-log FILE``: every request's method and path, one line each, so a
  test can count what the client asked (HEADs per file, GETs).

:meth:`WsgiDAVServer.set_checksums` stores a dCache-style ``Checksums``
property on a file (a dead property, kept by WsgiDAV's property manager): the
server then lists chosen checksums in PROPFIND answers, as dCache does.
:meth:`WsgiDAVServer.set_property` stores any other (an ownCloud ``oc:id``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import requests

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
App = Callable[[Environ, StartResponse], Iterable[bytes]]

HERE = Path(__file__).resolve()
START_TIMEOUT = 30.0


def _make_dav_app(root: str, user: str | None, password: str | None) -> App:
    from wsgidav.wsgidav_app import WsgiDAVApp

    config: dict[str, Any] = {
        "provider_mapping": {"/": root},
        "verbose": 1,
        "logging": {"enable": False},
        "property_manager": True,
        "lock_storage": True,
    }
    if user:
        config["http_authenticator"] = {"domain_controller": None, "accept_basic": True,
                                        "accept_digest": False, "default_to_digest": False}
        config["simple_dc"] = {"user_mapping": {"*": {user: {"password": password}}}}
    else:
        config["simple_dc"] = {"user_mapping": {"*": True}}
    app: App = WsgiDAVApp(config)
    return app


class FailFirstGets:
    """503 for the first ``count`` GETs, then pass through."""

    def __init__(self, app: App, count: int) -> None:
        self.app, self.left, self.lock = app, count, threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "GET":
            with self.lock:
                fail = self.left > 0
                self.left -= fail
            if fail:
                start_response("503 Service Unavailable",
                               [("Content-Length", "0"), ("Retry-After", "0")])
                return [b""]
        return self.app(environ, start_response)


class CutFirstGets:
    """The first ``count`` GETs of a file send half the body, then the connection
    drops (a reset in the middle of a transfer)."""

    def __init__(self, app: App, count: int) -> None:
        self.app, self.left, self.lock = app, count, threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        with self.lock:
            cut = environ["REQUEST_METHOD"] == "GET" and self.left > 0
            self.left -= cut
        body = self.app(environ, start_response)
        if not cut:
            return body
        return self._half(body)

    @staticmethod
    def _half(body: Iterable[bytes]) -> Iterable[bytes]:
        data = b"".join(body)
        if hasattr(body, "close"):
            body.close()
        yield data[: len(data) // 2]
        raise ConnectionAbortedError("test: connection cut in the middle of the body")


class RequestLog:
    """Appends ``METHOD PATH`` for every request to a file (flushed at once)."""

    def __init__(self, app: App, path: str) -> None:
        self.app, self.path, self.lock = app, path, threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        line = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '/')}\n"
        with self.lock, open(self.path, "a", encoding="utf-8",
                             errors="surrogateescape") as log:
            log.write(line)
        return self.app(environ, start_response)


class Door:
    """Redirects reads of files to the pool with a ticket; everything else is DAV."""

    def __init__(self, app: App, root: str, pool_url: Callable[[], str], ticket: str) -> None:
        self.app, self.root, self.pool_url, self.ticket = app, root, pool_url, ticket

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        full = os.path.join(self.root, path.lstrip("/"))
        if environ["REQUEST_METHOD"] in ("GET", "HEAD") and os.path.isfile(full):
            # The DAV app authenticates first: ask it with a PROPFIND-free probe by
            # letting it answer a HEAD, and only redirect when that succeeded.
            status: list[str] = []

            def capture(s: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
                status.append(s)
                return lambda data: None

            body = self.app({**environ, "REQUEST_METHOD": "HEAD"}, capture)
            for _ in body:
                pass
            if hasattr(body, "close"):
                body.close()
            if status and status[0].startswith("200"):
                raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or path
                location = f"{self.pool_url()}{raw.split('?')[0]}?pool-ticket={self.ticket}"
                start_response("307 Temporary Redirect",
                               [("Location", location), ("Content-Length", "0")])
                return [b""]
        return self.app(environ, start_response)


class Pool:
    """Serves file bytes for a valid ticket, without credentials (a dCache pool)."""

    def __init__(self, app: App, ticket: str) -> None:
        self.app, self.ticket = app, ticket

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        if f"pool-ticket={self.ticket}" not in query.split("&") or \
                environ.get("HTTP_AUTHORIZATION"):
            # A pool that sees credentials it was not meant to get refuses them.
            start_response("403 Forbidden", [("Content-Length", "0")])
            return [b""]
        return self.app(environ, start_response)


def serve(args: argparse.Namespace) -> None:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    password = os.environ.get(args.password_env) if args.password_env else None
    app = _make_dav_app(args.root, args.user, password)
    if args.fail_gets:
        app = FailFirstGets(app, args.fail_gets)
    if args.cut_gets:
        app = CutFirstGets(app, args.cut_gets)
    if args.request_log:
        app = RequestLog(app, args.request_log)
    servers: list[Any] = []
    if args.pool:
        ticket = secrets.token_hex(8)
        pool = wsgi.Server(("127.0.0.1", 0), Pool(_make_dav_app(args.root, None, None), ticket))
        pool.prepare()
        servers.append(pool)
        app = Door(app, args.root, lambda: f"http://127.0.0.1:{pool.bind_addr[1]}", ticket)
    server = wsgi.Server(("127.0.0.1", 0), app)
    if args.cert:
        server.ssl_adapter = BuiltinSSLAdapter(args.cert, args.key)
    server.prepare()
    servers.insert(0, server)
    for extra in servers[1:]:
        threading.Thread(target=extra.serve, daemon=True).start()
    print(f"PORT {server.bind_addr[1]}", flush=True)
    server.serve()


class WsgiDAVServer:
    """A WsgiDAV process serving ``root``; ``url`` once started."""

    def __init__(self, root: Path, user: str | None = "auditor",
                 password: str | None = None, *, tls: bool = False,
                 pool: bool = False, fail_gets: int = 0, cut_gets: int = 0,
                 request_log: Path | None = None, unprivileged: bool = False) -> None:
        self.root = root
        #: Run as ``nobody`` when the tests run as root, as a storage server's
        #: daemon account would: then a folder can be unreadable to the server.
        self.unprivileged = unprivileged
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.pool = pool
        self.fail_gets = fail_gets
        self.cut_gets = cut_gets
        self.request_log = request_log
        self.tls_dir: Path | None = None
        self.cert: Path | None = None
        if tls:
            self.tls_dir = Path(tempfile.mkdtemp(prefix="threetwoone-tls-"))
            self.cert = self.tls_dir / "cert.pem"
            make_self_signed(self.cert, self.tls_dir / "key.pem")
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> WsgiDAVServer:
        args = [sys.executable, str(HERE), "--root", str(self.root)]
        if self.unprivileged and os.geteuid() == 0:
            args[:0] = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        env = dict(os.environ)
        if self.user:
            args += ["--user", self.user, "--password-env", "WSGIDAV_TEST_PASSWORD"]
            env["WSGIDAV_TEST_PASSWORD"] = self.password
        if self.cert and self.tls_dir:
            args += ["--cert", str(self.cert), "--key", str(self.tls_dir / "key.pem")]
        if self.pool:
            args.append("--pool")
        if self.fail_gets:
            args += ["--fail-gets", str(self.fail_gets)]
        if self.cut_gets:
            args += ["--cut-gets", str(self.cut_gets)]
        if self.request_log:
            args += ["--request-log", str(self.request_log)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until it listens, or dies
        if not line.startswith("PORT "):
            self.stop()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"WsgiDAV did not start: {line!r}\n{err[-4000:]}")
        self.port = int(line.split()[1])
        return self

    def seen_requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request served so far (needs ``request_log``)."""
        assert self.request_log is not None, "started without request_log"
        if not self.request_log.exists():
            return []
        lines = self.request_log.read_text(encoding="utf-8", errors="surrogateescape")
        return [tuple(line.split(" ", 1)) for line in lines.splitlines()]  # type: ignore[misc]

    def set_checksums(self, path: str, value: str) -> None:
        """Make PROPFIND list ``value`` (e.g. ``adler32=084b021f,md5=<base64>``) as
        dCache's ``Checksums`` property of the file at URL path ``path``."""
        self.set_property(path, "http://www.dcache.org/2013/webdav", "Checksums", value)

    def set_property(self, path: str, namespace: str, name: str, value: str) -> None:
        """Store a dead property ``{namespace}name`` = ``value`` on ``path``."""
        body = ('<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" '
                f'xmlns:R="{escape(namespace)}"><D:set><D:prop>'
                f"<R:{name}>{escape(value)}</R:{name}></D:prop></D:set>"
                "</D:propertyupdate>")
        answer = requests.request(
            "PROPPATCH", self.url + path, data=body.encode(), timeout=10,
            auth=(self.user, self.password) if self.user else None,
            headers={"Content-Type": "application/xml"}, verify=False)
        assert answer.status_code == 207 and "200 OK" in answer.text, answer.text

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()

    def cleanup(self) -> None:
        self.stop()
        if self.tls_dir:
            shutil.rmtree(self.tls_dir, ignore_errors=True)


def make_self_signed(cert: Path, key: Path) -> None:
    """A self-signed certificate for 127.0.0.1 (openssl, as on any CI image)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is needed to make a test certificate")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    # Proves the pair loads before a server relies on it.
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password-env")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--pool", action="store_true")
    parser.add_argument("--fail-gets", type=int, default=0)
    parser.add_argument("--cut-gets", type=int, default=0)
    parser.add_argument("--request-log")
    serve(parser.parse_args())


if __name__ == "__main__":
    main()
