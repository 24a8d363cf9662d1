"""End-to-end audits with a WebDAV copy, through the real CLI, on real servers:
XRootD (server digests, like dCache) and WsgiDAV (no digests, basic auth).

The layout is the classic 3-2-1: a primary on disk and a tape copy at site-a,
and the off-site copy on the WebDAV server.  Only the WebDAV copy is damaged,
so the verdicts below are about it alone.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import (
    Lab,
    assert_counted_once,
    assert_manifest_unreadable,
    assert_unreadable_not_bit_rot,
    copy_by_location,
    dataset_of,
    rot_in_place,
    write_tree,
)
from servers.fault_proxy import Fault, FaultProxy
from threetwoone.backends.webdav import WebDAVBackend
from threetwoone.checksums import hash_bytes

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from backends.conftest_webdav import DavSite

# The WebDAV fixtures (servers on loopback) live with the backend tests.
pytest_plugins = ["servers.webdav_plugin"]

FILES: dict[str | bytes, bytes] = {
    "run1/sample_R1.fastq.gz": os.urandom(70_000),
    "run1/sample_R2.fastq.gz": os.urandom(50_000),
    "README.txt": b"sequencing run 1\n",
}


@pytest.fixture(params=["xrootd", "wsgidav"])
def site(request: pytest.FixtureRequest) -> DavSite:
    value: DavSite = request.getfixturevalue(f"{request.param}_site")
    return value


def lab_with_dav(lab: Lab, site: DavSite, files: dict[str | bytes, bytes] | None = None,
                 **dav: Any) -> str:
    """Primary + tape copy on local disks, the off-site copy on ``site``."""
    files = FILES if files is None else files
    nas = lab.location("nas", "disk", "site-a")
    tape = lab.location("tape", "tape", "site-a")
    write_tree(nas / "ds", files)
    write_tree(tape / "ds", files)
    path = site.tree(files)
    lab.locations["dav"] = site.settings(**dav)
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "tape", "path": "ds"},
                       {"location": "dav", "path": path}])
    return path


def damage(site: DavSite, path: str, how: str) -> None:
    root = site.local(path)
    target = root / "run1" / "sample_R1.fastq.gz"
    if how == "corrupt":
        data = bytearray(target.read_bytes())
        data[12345] ^= 0x01
        # A new file, as a bad transfer leaves it (same size, new mtime).
        (root / "tmp").write_bytes(bytes(data))
        os.replace(root / "tmp", target)
        site.readable(target)
    elif how == "incomplete":
        target.unlink()
    elif how == "missing":
        for folder, _dirs, names in os.walk(root, topdown=False):
            for name in names:
                os.unlink(os.path.join(folder, name))
            os.rmdir(folder)


def test_intact_webdav_copy_passes(lab: Lab, site: DavSite) -> None:
    lab_with_dav(lab, site)
    code, report = lab.audit_json()
    assert code == 0, report
    copy = copy_by_location(report, "ds", "dav")
    assert copy["state"] == "intact" and copy["counted"] and copy["offsite"]
    assert copy["files"]["present"] == 3
    # XRootD's digests are trusted from the very first audit: the primary's read
    # pass also computed the algorithms the server reports.
    assert copy["verification"] == ("digest" if site.digests else "full")
    assert dataset_of(report, "ds")["counts"] == {"copies": 3, "media": 3, "offsite": 1,
                                                   "sites": 2}


@pytest.mark.parametrize("how", ["corrupt", "incomplete", "missing"])
def test_damaged_webdav_copy(lab: Lab, site: DavSite, how: str) -> None:
    path = lab_with_dav(lab, site)
    assert lab.audit_json()[0] == 0  # records the reference
    damage(site, path, how)
    verdicts = {}
    for args in ((), ("--force-download",)):
        # --verify full: re-check every file, not only those whose size or mtime moved.
        code, report = lab.audit_json("--verify", "full", *args)
        copy = copy_by_location(report, "ds", "dav")
        verdicts[args] = (code, copy["state"], dataset_of(report, "ds")["status"])
        if how == "missing":
            assert copy["verification"] == "none"
        else:  # --verify full reads every byte, server digests or not
            assert copy["verification"] == "full"
        if how == "corrupt":
            [problem] = [p for p in copy["problems"] if p["problem"] == "corrupt"]
            assert problem["path"] == "run1/sample_R1.fastq.gz"
    # Digest and forced download reach the same verdict.
    assert verdicts[()] == verdicts[("--force-download",)] == (1, how, "fail")


def test_force_download_key_on_the_location(lab: Lab, xrootd_site: DavSite) -> None:
    lab_with_dav(lab, xrootd_site, force_download=True)
    code, report = lab.audit_json()
    assert code == 0
    assert copy_by_location(report, "ds", "dav")["verification"] == "full"


def test_wrong_credentials_exit_3(lab: Lab, wsgidav_site: DavSite,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRONG_PASSWORD", "definitely-wrong-password")
    lab_with_dav(lab, wsgidav_site,
                 auth={**wsgidav_site.auth, "password_env": "WRONG_PASSWORD"})
    result = lab.audit("--format", "json")
    assert result.exit_code == 3, result.stderr
    report = result.json()
    copy = copy_by_location(report, "ds", "dav")
    assert copy["state"] == "unreachable"
    assert dataset_of(report, "ds")["status"] == "unknown"
    assert "definitely-wrong-password" not in result.stdout + result.stderr


def test_server_down_exit_3(lab: Lab, xrootd_private: DavSite, fast_retries: None) -> None:
    lab_with_dav(lab, xrootd_private)
    assert lab.audit_json()[0] == 0
    xrootd_private.server.stop()
    code, report = lab.audit_json()
    assert code == 3
    copy = copy_by_location(report, "ds", "dav")
    assert copy["state"] == "unreachable"


def test_password_variable_in_the_environment_only(lab: Lab, wsgidav_site: DavSite) -> None:
    lab_with_dav(lab, wsgidav_site)
    password = os.environ[wsgidav_site.auth["password_env"]]
    inventory = lab.write().read_text()
    assert password not in inventory
    assert lab.audit_json(write=False)[0] == 0


def test_fixity_schedule_reads_the_bytes_under_stored_checksums(
        lab: Lab, xrootd_site: DavSite, monkeypatch: pytest.MonkeyPatch) -> None:
    """The nightly schedule catches a byte flipped in place under a checksum the
    storage keeps from ingest: its re-reads download, while new or changed files
    may still be settled by server digests."""
    from servers.xrootd import forge_checksum
    from threetwoone.checksums import hash_bytes

    path = lab_with_dav(lab, xrootd_site)
    now = 1_800_000_000.0
    monkeypatch.setenv("THREETWOONE_NOW", str(now))
    code, report = lab.audit_json()
    assert code == 0
    assert copy_by_location(report, "ds", "dav")["verification"] == "digest"
    victim = xrootd_site.local(path) / "run1" / "sample_R1.fastq.gz"
    original = FILES["run1/sample_R1.fastq.gz"]
    for algorithm in ("adler32", "md5"):  # what the storage recorded at ingest
        forge_checksum(victim, algorithm, hash_bytes(original, [algorithm])[algorithm])
    rot_in_place(victim, 5000)
    # Unchanged metadata, stored checksum: the next nights trust it...
    monkeypatch.setenv("THREETWOONE_NOW", str(now + 86400))
    code, report = lab.audit_json("--verify", "changed")
    assert code == 0
    # ...until the schedule re-reads it (every file is due after the interval).
    monkeypatch.setenv("THREETWOONE_NOW", str(now + 31 * 86400))
    code, report = lab.audit_json()
    assert code == 1
    dav = copy_by_location(report, "ds", "dav")
    assert dav["state"] == "corrupt"
    assert [p["path"] for p in dav["problems"]] == ["run1/sample_R1.fastq.gz"]


def test_names_that_look_percent_encoded_are_audited_as_they_are(lab: Lab,
                                                                 site: DavSite) -> None:
    """``100%25.txt`` is a file name, on a server that percent-encodes hrefs
    (WsgiDAV) and on one that writes them as they are (XRootD), also in a folder
    listed after one whose name can only be literal."""
    files: dict[str | bytes, bytes] = {"a b/f": b"1", "z/100%25.txt": b"2", "z/q%41": b"3",
                                       "100%25.txt": b"4"}
    lab_with_dav(lab, site, files)
    code, report = lab.audit_json("--verify", "full", "--force-download")
    copy = copy_by_location(report, "ds", "dav")
    assert code == 0, copy
    assert copy["state"] == "intact" and copy["files"]["present"] == 4


def test_checksums_in_the_listing_spare_a_request_per_file(
        lab: Lab, wsgidav_private_factory: Any, tmp_path: Path) -> None:
    """dCache lists its stored checksums in the PROPFIND answer (``Checksums``):
    the audit compares those, without a HEAD (or a GET) per file.  WsgiDAV serves
    them here as a dead property set on each file."""
    site: DavSite = wsgidav_private_factory(request_log=tmp_path / "requests.log")
    path = lab_with_dav(lab, site)
    for name, data in FILES.items():
        digests = hash_bytes(data, ["adler32", "md5"])
        md5 = base64.b64encode(bytes.fromhex(digests["md5"])).decode()
        site.server.set_checksums(f"/{path}/{os.fsdecode(name)}",
                                  f"adler32={digests['adler32']},md5={md5}")
    code, report = lab.audit_json()
    copy = copy_by_location(report, "ds", "dav")
    assert code == 0, copy
    assert copy["state"] == "intact" and copy["verification"] == "digest"
    asked = [method for method, url_path in site.server.seen_requests()
             if url_path.startswith(f"/{path}/") and not url_path.endswith("/")]
    assert asked and set(asked) == {"PROPPATCH"}  # ours, above: no HEAD, no GET


@pytest.mark.parametrize("fault", [
    {"cut_after": 1000, "no_length": True},  # closes early: looks like a whole body
    {"extra": b"trailing bytes"},            # more than the listing said
], ids=["ends-early", "runs-long"])
def test_a_body_of_the_wrong_length_is_unreadable_not_bit_rot(
        lab: Lab, site: DavSite, fast_retries: None, fault: dict[str, Any]) -> None:
    """A GET body shorter or longer than the listed size (a connection closed
    early with no Content-Length cannot be told from a whole body) makes the
    file unreadable and the copy ``error`` (exit 3), after the usual retries:
    never ``corrupt``, never "bit rot"."""
    proxy = FaultProxy(upstream_port=site.server.port)
    proxy.start()
    try:
        lab_with_dav(lab, site, url=proxy.endpoint_url)
        assert lab.audit_json()[0] == 0
        proxy.seen.clear()
        proxy.faults.append(Fault("GET", "sample_R1.fastq.gz", times=99, **fault))
        result = lab.audit("--format", "json", "--verify", "full", "--force-download")
        assert_unreadable_not_bit_rot(result, "dav", "run1/sample_R1.fastq.gz")
        gets = [p for p in proxy.requests("GET") if p.endswith("sample_R1.fastq.gz")]
        assert len(gets) == 1 + len(WebDAVBackend.retry_delays)  # retried, then given up
        # Once the transfers are whole again, so is the copy.
        proxy.faults.clear()
        code, report = lab.audit_json("--verify", "full", "--force-download")
        assert code == 0 and copy_by_location(report, "ds", "dav")["state"] == "intact"
    finally:
        proxy.stop()


def test_a_body_cut_once_is_read_again(lab: Lab, site: DavSite, fast_retries: None) -> None:
    proxy = FaultProxy(upstream_port=site.server.port)
    proxy.start()
    try:
        lab_with_dav(lab, site, url=proxy.endpoint_url)
        assert lab.audit_json()[0] == 0
        proxy.seen.clear()
        proxy.faults.append(Fault("GET", "sample_R1.fastq.gz", cut_after=1000,
                                  no_length=True, times=1))
        code, report = lab.audit_json("--verify", "full", "--force-download")
        assert code == 0 and copy_by_location(report, "ds", "dav")["state"] == "intact"
        assert len([p for p in proxy.requests("GET") if p.endswith("R1.fastq.gz")]) == 2
    finally:
        proxy.stop()


@pytest.mark.parametrize("no_length", [True, False], ids=["no-length", "with-length"])
def test_a_producer_manifest_cut_short_is_not_a_shorter_manifest(
        lab: Lab, site: DavSite, fast_retries: None, no_length: bool) -> None:
    """A manifest read from WebDAV whose body ends early at a line boundary (no
    Content-Length) would name fewer files, and the other files would only be
    "extra": the read must fail instead (the reference is unknown, exit 3)."""
    proxy = FaultProxy(upstream_port=site.server.port)
    proxy.start()
    try:
        manifest = "".join(f"{hash_bytes(data, ['md5'])['md5']}  {os.fsdecode(name)}\n"
                           for name, data in sorted(FILES.items())).encode()
        path = lab_with_dav(lab, site, {**FILES, "checksums.md5": manifest},
                            url=proxy.endpoint_url)
        lab.datasets["ds"]["copies"] = [{"location": "dav", "path": path, "primary": True},
                                        {"location": "nas", "path": "ds"},
                                        {"location": "tape", "path": "ds"}]
        lab.datasets["ds"]["checksums"] = {"file": "checksums.md5", "algorithm": "md5"}
        first_line = manifest.index(b"\n") + 1
        proxy.faults.append(Fault("GET", "checksums.md5", cut_after=first_line,
                                  no_length=no_length, times=99))
        assert_manifest_unreadable(lab.audit("--format", "json"))
    finally:
        proxy.stop()


@pytest.mark.parametrize("twin", [
    {"url": "http://localhost:{port}"},
    {"url": "http://127.0.0.1:{port}/./"},
    {"url": "http://LocalHost:{port}//", "path": "./{path}/"},
], ids=["localhost", "dot-segment", "host-case-and-copy-path"])
def test_one_folder_by_two_addresses_counts_once(lab: Lab, site: DavSite,
                                                 twin: dict[str, str]) -> None:
    """One WebDAV folder reached by two spellings of its address (another host
    name for the server, ``/./`` or ``//`` in the url, ``./`` in the copy path)
    is one copy: with a primary, two copies of 3 required, the audit fails."""
    write_tree(lab.location("nas", "disk", "site-a") / "ds", FILES)
    path = site.tree(FILES)
    port = site.server.port
    lab.locations["dav"] = site.settings()
    lab.locations["dav-2"] = {**site.settings(site="dav-site-2"),
                              "url": twin["url"].format(port=port)}
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "dav", "path": path},
                       {"location": "dav-2",
                        "path": twin.get("path", "{path}").format(path=path)}])
    assert_counted_once(*lab.audit_json(), twin="dav-2")


def _replica_with_rot(site: DavSite, files: dict[str | bytes, bytes]) -> tuple[str, str]:
    """Two folders on ``site`` holding ``files`` as ``ds``, the second a replica
    whose copy of ``run1/sample_R1.fastq.gz`` has one byte rotted: same size,
    same mtime, and (XRootD) the stored checksums of the intact bytes."""
    from servers.xrootd import forge_checksum

    first, second = site.tree({}, stem="site"), site.tree({}, stem="replica")
    for base in (first, second):
        write_tree(site.local(base) / "ds", files)
    for name in files:
        source = site.local(first) / "ds" / os.fsdecode(name)
        target = site.local(second) / "ds" / os.fsdecode(name)
        os.utime(target, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns))
    victim = site.local(second) / "ds" / "run1" / "sample_R1.fastq.gz"
    stat = victim.stat()
    data = bytearray(victim.read_bytes())
    data[4321] ^= 0x01
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    if site.digests:
        original = FILES["run1/sample_R1.fastq.gz"]
        for algorithm in ("adler32", "md5"):
            forge_checksum(victim, algorithm, hash_bytes(original, [algorithm])[algorithm])
    for base in (first, second):
        site.readable(site.local(base))
    return first, second


def test_url_pointed_at_a_replica_is_verified_in_full(lab: Lab, xrootd_site: DavSite) -> None:
    """Issue 11 route 5 on WebDAV: ``url`` changed to a replica whose files have
    the same names, sizes and mtimes (XRootD lists no ETag) and the same stored
    checksums, one of them with rotted bytes: the old folder's checks must not
    vouch for it."""
    first, second = _replica_with_rot(xrootd_site, FILES)
    for name, media in (("nas", "disk"), ("tape", "tape")):
        write_tree(lab.location(name, media, "site-a") / "ds", FILES)
    lab.locations["dav"] = xrootd_site.settings(url=f"{xrootd_site.url}/{first}")
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "tape", "path": "ds"},
                       {"location": "dav", "path": "ds"}])
    assert lab.audit_json()[0] == 0
    lab.locations["dav"]["url"] = f"{xrootd_site.url}/{second}/"
    code, report = lab.audit_json("--verify", "changed")
    copy = copy_by_location(report, "ds", "dav")
    assert (code, copy["state"], copy["verification"]) == (1, "corrupt", "full"), copy
    [warning] = [w for w in dataset_of(report, "ds")["warnings"] if "storage" in w]
    assert f"/{first} -> " in warning and "every file was verified in full" in warning


def test_a_folder_the_server_says_is_new_is_verified_in_full(
        lab: Lab, wsgidav_site: DavSite) -> None:
    """Where the server names the folder (``oc:id`` here, served by WsgiDAV as a
    dead property), a new id under the same path is new storage: nothing the
    old folder verified counts, although names, sizes, mtimes and ETags match."""
    path = lab_with_dav(lab, wsgidav_site)
    server = wsgidav_site.server
    server.set_property(f"/{path}", "http://owncloud.org/ns", "id", "00000007instance1")
    assert lab.audit_json()[0] == 0
    victim = wsgidav_site.local(path) / "run1" / "sample_R1.fastq.gz"
    stat = victim.stat()
    data = bytearray(victim.read_bytes())
    data[4321] ^= 0x01
    with open(victim, "r+b") as handle:  # in place: same inode, so the same ETag
        handle.write(bytes(data))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert lab.audit_json("--verify", "changed")[0] == 0  # the same folder: cached
    server.set_property(f"/{path}", "http://owncloud.org/ns", "id", "00000009instance1")
    code, report = lab.audit_json("--verify", "changed")
    copy = copy_by_location(report, "ds", "dav")
    assert (code, copy["state"], copy["verification"]) == (1, "corrupt", "full"), copy
    [warning] = [w for w in dataset_of(report, "ds")["warnings"] if "storage" in w]
    assert "resource id" in warning
