"""Collections and coverage on every kind of location, against real servers on
loopback: an SFTP host (OpenSSH sshd), WebDAV (WsgiDAV and XRootD) and S3
(moto's server).  Each lists folders one level at a time; an object key that
is no usable folder name (``..``) is refused, never followed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import Lab, run_cli, write_tree
from facilitylab import FILES, audit_json, write
from servers.moto_s3 import MotoS3
from servers.sshd import SSHHome, SSHServer

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from backends.conftest_webdav import DavSite

pytest_plugins = ["servers.webdav_plugin", "servers.s3_plugin", "servers.sftp_plugin"]

PROJECTS = ("P1", "P2", "P3")


def remote_collection(lab: Lab, location: dict[str, Any], base: str,
                      ignore: tuple[str, ...] = ()) -> dict[str, Path]:
    """Projects whose primaries are on the remote ``location`` (below ``base``),
    copied to two local disks; an undeclared folder beside them; coverage of
    ``base`` ignoring ``ignore``."""
    lab.locations["remote"] = location
    usb = lab.location("usb", "removable", "a")
    vault = lab.location("vault", "disk", "b")
    for project in PROJECTS:
        write_tree(usb / project, FILES)
        write_tree(vault / project, FILES)
    write(lab, collections={"ngi": {
        "location": "remote", "glob": f"{base}/P*",
        "copies": [{"location": "usb", "path": "{name}"},
                   {"location": "vault", "path": "{name}"}]}},
        coverage=[{"location": "remote", "path": base, "ignore": list(ignore)}])
    return {"usb": usb, "vault": vault}


def check_found(lab: Lab) -> None:
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--format",
                     "json")
    assert result.exit_code == 1, result.stderr  # the undeclared folder
    report = result.json()
    assert [d["name"] for d in report["datasets"]] == ["ngi/P1", "ngi/P2", "ngi/P3"]
    assert all(d["status"] == "pass" for d in report["datasets"]), report["datasets"]
    assert [(u["path"].rsplit("/", 1)[-1], u["files"]) for u in report["uncovered"]] == [
        ("undeclared", 2)]
    assert report["coverage"][0]["state"] == "checked"


def sftp_collection(lab: Lab, server: SSHServer) -> Path:
    """Three projects and an undeclared folder on the SFTP host, as the
    collection's location."""
    remote = server.data_dir(f"collection-{os.urandom(4).hex()}")
    for project in PROJECTS:
        write_tree(remote / "ngi" / project, FILES)
    write_tree(remote / "ngi" / "undeclared", {"x": b"1", "y/z": b"2"})
    remote_collection(lab, {"kind": "sftp", "host": "127.0.0.1", "port": server.port,
                            "user": server.user, "root": str(remote),
                            "identity_file": str(server.client_key),
                            "media": "disk", "site": "c"}, "ngi")
    return remote


def test_a_collection_and_coverage_on_an_sftp_host(lab: Lab, sshd: SSHServer,
                                                   trusted_home: SSHHome) -> None:
    remote = sftp_collection(lab, sshd)
    os.symlink("P1", remote / "ngi" / "P9")  # a symlink: never a dataset
    # Nor taken as covered: what it leads to is not checked.
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--format",
                     "json")
    assert result.exit_code == 1, result.stderr  # the undeclared folder
    [check] = result.json()["coverage"]
    assert check["state"] == "incomplete"
    assert "ngi/P9 is a symlink, not followed" in check["detail"]
    remote_collection(lab, lab.locations["remote"], "ngi", ignore=("P9",))
    check_found(lab)


def test_a_folder_name_not_utf8_on_an_sftp_host_is_never_skipped(
        lab: Lab, sshd: SSHServer, trusted_home: SSHHome) -> None:
    remote = sftp_collection(lab, sshd)
    write_tree(os.path.join(os.fsencode(remote), b"ngi", b"P4\xff"), FILES)
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--format",
                     "json")
    assert result.exit_code == 1, result.stderr  # uncovered folders fail the run
    report = result.json()
    assert [(d["name"], d["status"]) for d in report["datasets"]] == [
        (f"ngi/{project}", "pass") for project in PROJECTS]
    [listing] = report["collections"]
    assert listing["state"] == "incomplete"
    assert "ngi/P4\\xff: the name is not valid UTF-8" in listing["detail"]
    assert sorted(u["path"].rsplit("/", 1)[-1] for u in report["uncovered"]) == [
        "P4\\xff", "undeclared"]


def test_a_host_refused_for_its_key_is_tried_once_for_collection_coverage_and_copies(
        lab: Lab, sshd: SSHServer, ssh_home: SSHHome) -> None:
    sftp_collection(lab, sshd)  # ssh_home: the host key is trusted nowhere
    log_before = sshd.log.stat().st_size
    code, report = audit_json(lab)
    assert code == 3
    log = sshd.log.read_bytes()[log_before:].decode(errors="replace")
    assert log.count(f"on 127.0.0.1 port {sshd.port}") == 1, log
    [location] = [loc for loc in report["locations"] if loc["name"] == "remote"]
    assert location["state"] == "unreachable" and "is not known" in location["detail"]
    assert report["collections"][0]["state"] == "unreachable"
    assert report["coverage"][0]["state"] != "checked"
    # Nothing known about the collection: the run is undetermined, never empty-and-passing.
    assert report["datasets"] == [] and report["exit_code"] == 3


def test_a_collection_and_coverage_on_webdav(lab: Lab, dav_site: DavSite) -> None:
    base = dav_site.tree({f"{p}/{name}": data for p in PROJECTS
                          for name, data in FILES.items()}
                         | {"undeclared/x": b"1", "undeclared/y/z": b"2"}, stem="ngi")
    remote_collection(lab, dav_site.settings(site="c"), base)
    check_found(lab)


def test_a_collection_and_coverage_on_s3(lab: Lab, moto_s3: MotoS3, aws_env: None) -> None:
    s3 = moto_s3
    bucket = s3.new_bucket("facility")
    for project in PROJECTS:
        s3.put_tree(bucket, f"deliveries/ngi/{project}/", FILES)
    s3.put_tree(bucket, "deliveries/ngi/undeclared/", {"x": b"1", "y/z": b"2"})
    remote_collection(lab, {"kind": "s3", "endpoint_url": s3.endpoint_url, "bucket": bucket,
                            "prefix": "deliveries/", "media": "object", "site": "c"}, "ngi")
    check_found(lab)


@pytest.mark.parametrize(("key", "glob", "folder"), [
    ("deliveries/ngi/../escape", "ngi/.*", "ngi/.."),
    ("deliveries/ngi//escape", "ngi/*", "ngi/"),
])
def test_an_object_key_that_is_no_folder_exits_4(
        lab: Lab, moto_s3: MotoS3, aws_env: None, key: str, glob: str, folder: str) -> None:
    s3 = moto_s3
    bucket = s3.new_bucket("hostile")
    s3.put_tree(bucket, "deliveries/ngi/P1/", FILES)
    # S3 keys are strings: 'ngi/../x' lists a folder named '..', 'ngi//x' one named ''.
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"x")
    remote_collection(lab, {"kind": "s3", "endpoint_url": s3.endpoint_url, "bucket": bucket,
                            "prefix": "deliveries/", "media": "object", "site": "c"}, "ngi")
    write(lab, collections={"ngi": {
        "location": "remote", "glob": glob,
        "copies": [{"location": "usb", "path": "{name}"},
                   {"location": "vault", "path": "{name}"}]}})
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state))
    assert result.exit_code == 4, result.stderr
    assert (f"collections.ngi.glob: the folder {folder} found on remote is not a usable "
            "path") in result.stderr
    assert "Traceback" not in result.stderr
