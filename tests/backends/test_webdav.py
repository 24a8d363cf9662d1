"""The WebDAV backend against real servers on loopback: XRootD (answers
``Want-Digest`` like dCache) and WsgiDAV (no digests, basic auth)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.conftest_webdav import DavSite
from backends.contract import (
    BackendContract,
    Capabilities,
    DiskStorage,
    copy_state,
    expected_digests,
    files_of,
    hash_all,
    make_empty_files,
    ram_folder,
    remove_tree,
)
from conftest import rot_in_place
from servers.wsgidav_server import WsgiDAVServer
from servers.xrootd import XRootDServer, forge_checksum, free_port
from threetwoone.backends import Backend
from threetwoone.backends.interface import (
    CopyFailed,
    LocationUnreachable,
    RootInfo,
)
from threetwoone.backends.webdav import WebDAVBackend
from threetwoone.checksums import hash_bytes
from threetwoone.inventory import Location

ALL = ("xxh3_128", "md5", "adler32", "sha256")

FILES: dict[str | bytes, bytes] = {
    "a.txt": b"hello\n",
    "sub/b.bin": bytes(range(256)) * 800,
    "sub/deeper/c.dat": b"c" * 10,
    "sub/empty": b"",
    "name with space ü.txt": b"unicode name",
    "100%25.txt": b"a name that looks percent-encoded",
    "a.b/z": b"sorts after a.txt but before b",
}


@pytest.fixture
def connected(request: pytest.FixtureRequest, dav_site: DavSite) -> WebDAVBackend:
    backend = dav_site.backend()
    backend.connect()
    request.addfinalizer(backend.close)
    return backend


# -- listing ---------------------------------------------------------------------

def test_walk_of_nested_copy_path(dav_site: DavSite, connected: WebDAVBackend) -> None:
    path = dav_site.tree({"P1/run1/x": b"1", "P1/run1/y/z": b"2", "P1/other": b"3"})
    assert list(files_of(connected, f"{path}/P1/run1")) == ["x", "y/z"]


PERCENT_NAMES: dict[str | bytes, bytes] = {
    "a b/f": b"a folder whose name a URL must encode",
    "z/100%25.txt": b"a name that looks percent-encoded",
    "z/q%41": b"another one",
}


@pytest.mark.parametrize("files", [PERCENT_NAMES, {"100%25.txt": b"alone", "q%41": b"q"}],
                         ids=["after-a-literal-name", "no-literal-name"])
def test_names_that_look_percent_encoded(dav_site: DavSite, connected: WebDAVBackend,
                                         files: dict[str | bytes, bytes]) -> None:
    """XRootD sends names as they are on disk, WsgiDAV percent-encodes them: both
    must list ``100%25.txt`` as ``100%25.txt``, in every folder, whether or not
    a name that can only be literal came first (regression: the literal mode
    was reset while parsing, so ``z/100%25.txt`` became ``z/100%.txt``)."""
    path = dav_site.tree(files)
    results = hash_all(connected, path, ["xxh3_128"], force_full=True)
    assert set(results) == {os.fsdecode(n) for n in files}
    for name, data in files.items():
        result = results[os.fsdecode(name)]
        assert result.error is None, result
        assert result.digests == hash_bytes(data, ["xxh3_128"])


def test_xrootd_names_that_are_not_utf8(xrootd_site: DavSite) -> None:
    files: dict[str | bytes, bytes] = {b"bad\xff.txt": b"latin-1 name", "ok.txt": b"ok"}
    path = xrootd_site.tree(files)
    backend = xrootd_site.backend()
    backend.connect()
    results = hash_all(backend, path, ["xxh3_128"], force_full=True)
    name = os.fsdecode(b"bad\xff.txt")
    assert set(results) == {name, "ok.txt"}
    assert results[name].digests == hash_bytes(b"latin-1 name", ["xxh3_128"])


def test_stat_root_names_every_address_of_the_server(dav_site: DavSite) -> None:
    """One folder through ``localhost`` and ``127.0.0.1``, ``/./`` and ``./``
    shares a same-storage key; another folder does not."""
    path = dav_site.tree({"f": b"x"})
    other = dav_site.tree({"f": b"x"})
    port = dav_site.server.port

    def root(path: str, **settings: Any) -> RootInfo:
        backend = dav_site.backend(**settings)
        backend.connect()
        info = backend.stat_root(path)
        backend.close()
        assert info is not None
        return info

    keys = set(root(path).keys())
    for url, copy_path in ((f"http://localhost:{port}", path),
                           (f"http://127.0.0.1:{port}/./", f"./{path}/"),
                           (f"http://127.0.0.1:{port}//x/..", path)):
        assert keys & set(root(copy_path, url=url).keys()), url
    assert not keys & set(root(other).keys())


def test_a_folder_the_server_identifies_is_one_storage_by_any_path(
        wsgidav_site: DavSite) -> None:
    """Where the server names the folder itself (ownCloud's ``oc:id``, RFC 5842
    ``resource-id``), two paths it names alike are one storage.  WsgiDAV serves
    the ``oc:id`` here as a dead property."""
    first, second, third = (wsgidav_site.tree({"f": b"x"}) for _ in range(3))
    server = wsgidav_site.server
    for path in (first, second):
        server.set_property(f"/{path}", "http://owncloud.org/ns", "id", "00000042ocinstance")
    backend = wsgidav_site.backend()
    backend.connect()
    keys = [set(backend.stat_root(p).keys()) for p in (first, second, third)]  # type: ignore[union-attr]
    assert keys[0] & keys[1] == {"webdav-resource:owncloud:00000042ocinstance"}
    assert not keys[0] & keys[2]


# -- digests -----------------------------------------------------------------------

def test_digest_algorithms(dav_site: DavSite, connected: WebDAVBackend) -> None:
    dav_site.tree({"probe": b"p"})
    offered = connected.digest_algorithms()
    if dav_site.digests:
        assert {"adler32", "md5"} <= set(offered)
    else:
        assert offered == ()


def test_digest_path_asks_only_for_what_the_reference_has(
        xrootd_site: DavSite) -> None:
    path = xrootd_site.tree(FILES)
    backend = xrootd_site.backend()
    backend.connect()
    md5_only = hash_all(backend, path, ["xxh3_128", "md5"])
    for name, result in md5_only.items():
        assert result.method == "digest"
        assert result.digests == {"md5": expected_digests(FILES)[name]["md5"]}
    # A reference made before this location existed has no server algorithm:
    # the bytes must be read.
    plain = hash_all(backend, path, ["xxh3_128"])
    assert {r.method for r in plain.values()} == {"full"}
    assert all(set(r.digests) == {"xxh3_128"} for r in plain.values())


@pytest.mark.parametrize("force_full", [False, True], ids=["digest", "download"])
def test_many_requests_on_one_connection(xrootd_site: DavSite, force_full: bool) -> None:
    """Regression: XRootD 5.5 answers ``Want-Digest`` on GET with a wrong 404
    ("Could not run read request") or crashes after a few dozen such requests;
    the forced download asks for the server digest with a HEAD instead."""
    files: dict[str | bytes, bytes] = {f"d{i % 7}/f{i:03d}": os.urandom(512)
                                       for i in range(150)}
    path = xrootd_site.tree(files)
    backend = xrootd_site.backend(timeout=10)
    backend.connect()
    algorithms = ["xxh3_128", *backend.digest_algorithms()]
    results = hash_all(backend, path, algorithms, force_full=force_full)
    assert [r for r in results.values() if r.error] == []
    assert {r.method for r in results.values()} == {"full" if force_full else "digest"}
    for name, data in files.items():
        result = results[os.fsdecode(name)]
        assert all(hash_bytes(data, [a])[a] == v for a, v in result.digests.items())


def test_a_server_that_lies_is_told_apart_by_a_forced_download(xrootd_site: DavSite) -> None:
    """The bytes are intact, the server's stored adler32 is wrong."""
    path = xrootd_site.tree(FILES)
    wrong = f"{zlib.adler32(b'something else'):08x}"
    forge_checksum(xrootd_site.local(path) / "sub/b.bin", "adler32", wrong)
    forge_checksum(xrootd_site.local(path) / "sub/b.bin", "md5",
                   hash_bytes(b"something else", ["md5"])["md5"])
    backend = xrootd_site.backend()
    backend.connect()
    ref = expected_digests(FILES, ALL)
    by_digest = hash_all(backend, path, ["xxh3_128", "adler32"])
    assert by_digest["sub/b.bin"].method == "digest"
    assert by_digest["sub/b.bin"].digests == {"adler32": wrong}
    assert by_digest["sub/b.bin"].digests["adler32"] != ref["sub/b.bin"]["adler32"]

    downloaded = hash_all(backend, path, ["xxh3_128", "adler32"], force_full=True)
    result = downloaded["sub/b.bin"]
    assert result.method == "full"
    assert result.digests == {a: ref["sub/b.bin"][a] for a in ("xxh3_128", "adler32")}
    assert result.via is not None and "differs from the bytes" in result.via
    assert downloaded["a.txt"].via == "download; server checksum agrees"
    algorithms = ["xxh3_128", *backend.digest_algorithms()]
    assert copy_state(backend, path, FILES, algorithms)[0] == "corrupt"
    assert copy_state(backend, path, FILES, algorithms, force_full=True)[0] == "intact"


def test_bit_rot_under_a_stored_checksum_needs_a_forced_download(
        xrootd_site: DavSite) -> None:
    """Storage that keeps checksums from ingest (dCache, XRootD's xattr) does not
    see a byte flipped in place: only reading the bytes does.  This is why a
    forced download must run now and then."""
    path = xrootd_site.tree(FILES)
    victim = xrootd_site.local(path) / "sub/b.bin"
    for algorithm in ("adler32", "md5"):  # the checksums taken at ingest
        forge_checksum(victim, algorithm, expected_digests(FILES, ALL)["sub/b.bin"][algorithm])
    rot_in_place(victim, 5000)
    backend = xrootd_site.backend()
    backend.connect()
    algorithms = ["xxh3_128", *backend.digest_algorithms()]
    assert copy_state(backend, path, FILES, algorithms) == ("intact", frozenset({"digest"}))
    assert copy_state(backend, path, FILES, algorithms, force_full=True) == (
        "corrupt", frozenset({"full"}))


# -- redirects and retries ------------------------------------------------------------

def test_reads_follow_a_redirect_to_a_pool_without_credentials(
        wsgidav_private_factory: Any) -> None:
    site: DavSite = wsgidav_private_factory(pool=True)
    path = site.tree(FILES)
    backend = site.backend()
    backend.connect()
    results = hash_all(backend, path, ["xxh3_128", "md5"])
    ref = expected_digests(FILES)
    for name, result in results.items():
        assert result.error is None, result
        assert result.digests["md5"] == ref[name]["md5"]
    with backend.open_read(path, "a.txt") as handle:
        assert handle.read() == FILES["a.txt"]


def test_5xx_is_retried(wsgidav_private_factory: Any, fast_retries: None) -> None:
    site: DavSite = wsgidav_private_factory(fail_gets=3)
    path = site.tree({"a": b"A", "b": b"B"})
    backend = site.backend()
    backend.connect()
    results = hash_all(backend, path, ["md5"])
    assert results["a"].error is None and results["b"].error is None
    assert results["a"].digests == hash_bytes(b"A", ["md5"])


def test_a_transfer_cut_half_way_is_retried(wsgidav_private_factory: Any,
                                            fast_retries: None) -> None:
    site: DavSite = wsgidav_private_factory(cut_gets=2)
    data = os.urandom(300_000)
    path = site.tree({"big": data})
    backend = site.backend()
    backend.connect()
    result = hash_all(backend, path, ["md5"])["big"]
    assert result.error is None
    assert result.digests == hash_bytes(data, ["md5"]) and result.size == len(data)


def test_a_transfer_cut_every_time_stops_the_copy(wsgidav_private_factory: Any,
                                                  fast_retries: None) -> None:
    site: DavSite = wsgidav_private_factory(cut_gets=1000)
    path = site.tree({"big": os.urandom(300_000)})
    backend = site.backend()
    backend.connect()
    entries = list(files_of(backend, path).values())
    with pytest.raises(CopyFailed, match=r"closed the connection before the end|lost"):
        list(backend.hash_files(path, entries, ["md5"]))


def test_a_persistent_5xx_is_a_file_error(wsgidav_private_factory: Any,
                                          fast_retries: None) -> None:
    site: DavSite = wsgidav_private_factory(fail_gets=1000)
    path = site.tree({"a": b"A"})
    backend = site.backend()
    backend.connect()
    result = hash_all(backend, path, ["md5"])["a"]
    assert result.error == "HTTP 503 Service Unavailable"
    assert result.digests == {}


def test_server_stopped_mid_audit(xrootd_private: DavSite, fast_retries: None) -> None:
    files: dict[str | bytes, bytes] = {f"f{i:02d}": os.urandom(1000) for i in range(10)}
    path = xrootd_private.tree(files)
    backend = xrootd_private.backend()
    backend.connect()
    entries = list(files_of(backend, path).values())
    results = backend.hash_files(path, entries, ["xxh3_128"])
    first = next(results)
    assert first.error is None
    xrootd_private.server.stop()
    with pytest.raises(CopyFailed, match="connection refused"):
        list(results)
    with pytest.raises(CopyFailed, match="listing stopped"):
        list(backend.walk(path))
    with pytest.raises(LocationUnreachable, match="connection refused"):
        xrootd_private.backend().connect()


# -- reaching and authenticating ---------------------------------------------------------

def test_wrong_password_is_unreachable_and_never_shown(wsgidav_site: DavSite,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRONG_DAV_PASSWORD", "hunter2-not-it")
    backend = wsgidav_site.backend(auth={**wsgidav_site.auth,
                                         "password_env": "WRONG_DAV_PASSWORD"})
    with pytest.raises(LocationUnreachable, match=r"authentication failed .*HTTP 401") as info:
        backend.connect()
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_no_credentials_and_unset_variables(wsgidav_site: DavSite,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LocationUnreachable, match="HTTP 401"):
        wsgidav_site.backend(auth={"type": "none"}).connect()
    monkeypatch.delenv("UNSET_DAV_TOKEN", raising=False)
    with pytest.raises(LocationUnreachable, match="UNSET_DAV_TOKEN"):
        wsgidav_site.backend(auth={"type": "bearer", "token_env": "UNSET_DAV_TOKEN"}).connect()
    monkeypatch.setenv("SOME_DAV_TOKEN", "tok-secret-123")
    with pytest.raises(LocationUnreachable, match="HTTP 401") as info:
        wsgidav_site.backend(auth={"type": "bearer", "token_env": "SOME_DAV_TOKEN"}).connect()
    assert "tok-secret-123" not in str(info.value)


def test_nothing_listening_is_unreachable_at_once() -> None:
    location = Location("dav", "webdav", "object", "x",
                        {"url": f"http://127.0.0.1:{free_port()}/data"})
    with pytest.raises(LocationUnreachable, match="connection refused"):
        WebDAVBackend("dav", location).connect()


def test_a_server_that_never_answers_is_unreachable_after_the_timeout() -> None:
    import socket
    import time

    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        location = Location("dav", "webdav", "object", "x",
                            {"url": f"http://127.0.0.1:{port}/", "timeout": 0.5})
        start = time.monotonic()
        with pytest.raises(LocationUnreachable, match=r"did not answer within 0\.5 s"):
            WebDAVBackend("dav", location).connect()
        assert time.monotonic() - start < 5  # not retried at connect


def test_unknown_host_is_unreachable() -> None:
    location = Location("dav", "webdav", "object", "x",
                        {"url": "https://no-such-host.invalid/data", "timeout": 5})
    with pytest.raises(LocationUnreachable,
                       match=r"cannot resolve host 'no-such-host\.invalid' \(DNS\)"):
        WebDAVBackend("dav", location).connect()


@pytest.mark.parametrize("url", ["https://user:s3cret@example.org/data",
                                 "https://example.org/data?authz=s3cret"])
def test_url_with_credentials_is_refused_without_echoing_it(url: str) -> None:
    location = Location("dav", "webdav", "object", "x", {"url": url})
    with pytest.raises(LocationUnreachable, match=r"password_env|token_env") as info:
        WebDAVBackend("dav", location).connect()
    assert "s3cret" not in str(info.value)


def test_tls_certificate_checks(wsgidav_private_factory: Any) -> None:
    site: DavSite = wsgidav_private_factory(tls=True)
    path = site.tree({"a": b"A"})
    with pytest.raises(LocationUnreachable, match=r"TLS certificate .* not accepted"):
        site.backend().connect()
    cert = str(site.server.cert)
    trusting = site.backend(ca_bundle=cert)
    trusting.connect()
    assert hash_all(trusting, path, ["md5"])["a"].digests == hash_bytes(b"A", ["md5"])
    insecure = site.backend(verify_tls=False)
    insecure.connect()
    assert list(files_of(insecure, path)) == ["a"]
    with pytest.raises(LocationUnreachable, match="does not exist"):
        site.backend(ca_bundle=str(Path(cert).with_name("missing.pem"))).connect()


# -- the backend contract (contract.py), on XRootD and on WsgiDAV -----------------------


class DavStorage(DiskStorage):
    """Copies in a WebDAV server's folder on this disk."""

    def __init__(self, site: DavSite) -> None:
        super().__init__()
        self.site = site
        self.secrets = tuple(os.environ.get(str(site.auth.get("password_env")), "")
                             for _ in (1,) if site.auth.get("password_env"))

    def location(self, **settings: Any) -> Location:
        return self.site.location(**settings)

    def disk(self, path: str) -> bytes:
        return os.fsencode(self.site.local(path))

    def after_write(self, path: str) -> None:
        self.site.readable(self.site.local(path))


class XRootDStorage(DavStorage):
    #: XRootD 5.5 lists a name cut at its newline, garbles names near 255 bytes,
    #: and answers 404 for a name with "?" (it decodes %3F, then splits there).
    capabilities = Capabilities(
        unserved_names=frozenset({"newline", "255-bytes", "255-bytes-multibyte",
                                  "question-mark"}),
        symlinks=False, special_files=False, server_digests=True)

    def big_copy(self, count: int) -> tuple[Backend, str]:
        """On an XRootD of its own serving a RAM folder."""
        base = ram_folder()
        self.cleanup(lambda: remove_tree(base))
        server = XRootDServer(base)
        make_empty_files(server.data / "ds", count)
        server.adopt(server.data / "ds")
        server.start()
        self.cleanup(server.stop)
        site = DavSite("xrootd", server.url, server.data, server, digests=True)
        return DavStorage(site).backend(), "ds"


class WsgiDAVStorage(DavStorage):
    #: WsgiDAV answers a PROPFIND of a folder holding a name that is not UTF-8
    #: with HTTP 500.
    capabilities = Capabilities(unserved_names=frozenset({"not-utf8"}), symlinks=False,
                                special_files=False)

    def big_copy(self, count: int) -> tuple[Backend, str]:
        """On a WsgiDAV of its own (no login) serving a RAM folder."""
        root = ram_folder()
        self.cleanup(lambda: remove_tree(root))
        make_empty_files(root / "ds", count)
        server = WsgiDAVServer(root, user=None).start()
        self.cleanup(server.stop)
        return DavStorage(DavSite("wsgidav", server.url, root, server)).backend(), "ds"


class TestXRootDContract(BackendContract):
    """XRootD's HTTP server: checksums on request (``Want-Digest``), like dCache."""

    storage_kind = XRootDStorage

    @pytest.fixture
    def storage(self, xrootd_site: DavSite) -> Iterator[DavStorage]:
        storage = XRootDStorage(xrootd_site)
        yield storage
        storage.close()


class TestWsgiDAVContract(BackendContract):
    """WsgiDAV: no checksums, basic auth, names percent-encoded; run as
    ``nobody``, so that a folder can be closed to it."""

    storage_kind = WsgiDAVStorage

    @pytest.fixture
    def storage(self, wsgidav_unprivileged_site: DavSite) -> Iterator[DavStorage]:
        storage = WsgiDAVStorage(wsgidav_unprivileged_site)
        yield storage
        storage.close()
