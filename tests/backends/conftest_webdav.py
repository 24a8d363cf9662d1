"""WebDAV fixtures: a real XRootD (server digests) and a real WsgiDAV (no digests,
basic auth) on loopback.  See servers/xrootd.py and servers/wsgidav_server.py.

Session-scoped servers are shared; each test writes its trees in a folder of its
own (:meth:`DavSite.tree`).  Tests that stop a server use the ``*_private``
fixtures, which start one for that test only.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import Tree
from servers.wsgidav_server import WsgiDAVServer
from servers.xrootd import XRootDServer, make_readable, world_readable_tmpdir
from threetwoone.backends.webdav import WebDAVBackend
from threetwoone.inventory import Location

#: The environment variable that carries the WsgiDAV password in tests.
PASSWORD_ENV = "THREETWOONE_TEST_DAV_PASSWORD"

_folders = itertools.count(1)


@dataclass
class DavSite:
    """A running WebDAV server as the tests see it."""

    name: str
    url: str
    data: Path
    server: Any
    auth: Mapping[str, Any] = field(default_factory=lambda: {"type": "none"})
    digests: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def tree(self, files: Tree, stem: str = "ds") -> str:
        """Write ``files`` in a fresh folder on the server; return its path."""
        name = f"{stem}-{next(_folders)}"
        root = os.path.join(os.fsencode(self.data), os.fsencode(name))
        for rel, content in files.items():
            full = os.path.join(root, os.fsencode(rel))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as handle:
                handle.write(content)
        os.makedirs(root, exist_ok=True)
        self.readable(self.data / name)
        return name

    def readable(self, path: Path) -> None:
        """After writing below ``path``: let the server read (and own) it."""
        adopt = getattr(self.server, "adopt", None)
        if adopt is not None:
            adopt(path)
        else:
            make_readable(path)

    def local(self, path: str) -> Path:
        return self.data / path

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"kind": "webdav", "url": self.url, "auth": dict(self.auth),
                "media": "object", "site": "dav-site", **self.extra, **extra}

    def location(self, name: str = "dav", **extra: Any) -> Location:
        settings = self.settings(**extra)
        return Location(name=name, kind="webdav", media="object", site="dav-site",
                        settings=settings)

    def backend(self, **extra: Any) -> WebDAVBackend:
        return WebDAVBackend("dav", self.location(**extra))


def _xrootd_site(server: XRootDServer) -> DavSite:
    return DavSite("xrootd", server.url, server.data, server, digests=True)


def _wsgidav_site(server: WsgiDAVServer) -> DavSite:
    return DavSite("wsgidav", server.url, server.root, server,
                   auth={"type": "basic", "username": server.user,
                         "password_env": PASSWORD_ENV})


@pytest.fixture(scope="session")
def xrootd_server() -> Iterator[XRootDServer]:
    server = XRootDServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def wsgidav_server() -> Iterator[WsgiDAVServer]:
    root = world_readable_tmpdir("threetwoone-wsgidav-")
    server = WsgiDAVServer(root).start()
    os.environ[PASSWORD_ENV] = server.password
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def wsgidav_unprivileged_server() -> Iterator[WsgiDAVServer]:
    """A WsgiDAV running as ``nobody`` (when the tests run as root)."""
    root = world_readable_tmpdir("threetwoone-wsgidav-")
    server = WsgiDAVServer(root, unprivileged=True).start()
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def wsgidav_unprivileged_site(wsgidav_unprivileged_server: WsgiDAVServer,
                              monkeypatch: pytest.MonkeyPatch) -> DavSite:
    monkeypatch.setenv(PASSWORD_ENV, wsgidav_unprivileged_server.password)
    return _wsgidav_site(wsgidav_unprivileged_server)


@pytest.fixture
def xrootd_site(xrootd_server: XRootDServer) -> DavSite:
    xrootd_server.ensure_running()  # XRootD 5.5 crashes now and then (see there)
    return _xrootd_site(xrootd_server)


@pytest.fixture
def wsgidav_site(wsgidav_server: WsgiDAVServer, monkeypatch: pytest.MonkeyPatch) -> DavSite:
    monkeypatch.setenv(PASSWORD_ENV, wsgidav_server.password)
    return _wsgidav_site(wsgidav_server)


@pytest.fixture(params=["xrootd", "wsgidav"])
def dav_site(request: pytest.FixtureRequest) -> DavSite:
    """Each test using it runs once per server."""
    site: DavSite = request.getfixturevalue(f"{request.param}_site")
    return site


@pytest.fixture
def xrootd_private() -> Iterator[DavSite]:
    server = XRootDServer().start()
    yield _xrootd_site(server)
    server.cleanup()


@pytest.fixture
def wsgidav_private_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start a WsgiDAV of one's own: ``factory(tls=True, pool=True, fail_gets=2)``."""
    started: list[tuple[WsgiDAVServer, Path]] = []

    def factory(**options: Any) -> DavSite:
        root = world_readable_tmpdir("threetwoone-wsgidav-")
        server = WsgiDAVServer(root, **options).start()
        started.append((server, root))
        monkeypatch.setenv(PASSWORD_ENV, server.password)
        return _wsgidav_site(server)

    yield factory
    for server, root in started:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff in milliseconds instead of seconds (the same number of attempts)."""
    monkeypatch.setattr(WebDAVBackend, "retry_delays", (0.01, 0.02, 0.04))


__all__ = ["PASSWORD_ENV", "DavSite", "dav_site", "fast_retries", "wsgidav_private_factory",
           "wsgidav_server", "wsgidav_site", "wsgidav_unprivileged_server",
           "wsgidav_unprivileged_site", "xrootd_private", "xrootd_server", "xrootd_site"]
