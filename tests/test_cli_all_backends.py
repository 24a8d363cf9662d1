"""One inventory, every kind of location: a local primary, an SFTP host (real
sshd), dCache-like WebDAV with server digests (real XRootD) and S3 (moto's real
server), audited together through the CLI in one run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import Lab, copy_by_location, dataset_of, write_tree
from servers.moto_s3 import MotoS3
from servers.sshd import SSHHome, SSHServer

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from backends.conftest_webdav import DavSite

pytest_plugins = ["servers.webdav_plugin", "servers.s3_plugin", "servers.sftp_plugin"]

FILES: dict[str, bytes] = {
    "run1/sample_R1.fastq.gz": os.urandom(90_000),
    "run1/sample_R2.fastq.gz": os.urandom(60_000),
    "SampleSheet.csv": b"Lane,Sample_ID\n1,S1\n",
}


@pytest.fixture
def every_kind(lab: Lab, sshd: SSHServer, trusted_home: SSHHome, moto_s3: MotoS3,
               aws_env: None, xrootd_site: DavSite) -> dict[str, object]:
    """One dataset with a copy on each kind, on the suite's shared servers (a fresh
    folder and bucket of its own); the client home trusts only the test sshd."""
    nas = lab.location("nas", "disk", "uppsala")
    write_tree(nas / "run1", FILES)
    remote = sshd.data_dir(f"all-{os.urandom(4).hex()}")
    write_tree(remote / "run1", FILES)
    lab.locations["backup"] = {
        "kind": "sftp", "host": "127.0.0.1", "port": sshd.port,
        "user": sshd.user, "root": str(remote),
        "identity_file": str(sshd.client_key), "media": "tape", "site": "kth"}
    dav_path = xrootd_site.tree(FILES)
    lab.locations["swestore"] = {**xrootd_site.settings(), "site": "nsc"}
    bucket = moto_s3.new_bucket("archive")
    moto_s3.put_tree(bucket, "projects/run1/", FILES, checksum="SHA256")
    lab.locations["archive"] = {"kind": "s3", "endpoint_url": moto_s3.endpoint_url,
                                "bucket": bucket, "prefix": "projects/", "media": "object",
                                "site": "other-region"}
    lab.dataset("run1", [{"location": "nas", "path": "run1", "primary": True},
                         {"location": "backup", "path": "run1"},
                         {"location": "swestore", "path": dav_path},
                         {"location": "archive", "path": "run1"}],
                policy="ndsa-storage-2")
    return {"remote": remote, "dav": xrootd_site.local(dav_path)}


def test_every_kind_in_one_audit(lab: Lab, every_kind: dict[str, object]) -> None:
    code, report = lab.audit_json()
    assert code == 0, report
    ds = dataset_of(report, "run1")
    assert ds["status"] == "pass"
    assert ds["counts"]["copies"] == 4 and ds["counts"]["offsite"] == 3
    states = {c["location"]: (c["state"], c["verification"]) for c in ds["copies"]}
    assert states == {"nas": ("intact", "full"), "backup": ("intact", "full"),
                      "swestore": ("intact", "digest"), "archive": ("intact", "digest")}
    assert copy_by_location(report, "run1", "backup")["methods"] == ["remote xxhsum -H2"]

    # Damage two remote copies; the next audit names exactly those files.
    remote = every_kind["remote"]
    dav = every_kind["dav"]
    assert isinstance(remote, Path) and isinstance(dav, Path)
    (remote / "run1" / "SampleSheet.csv").write_bytes(b"Lane,Sample_ID\n1,S2\n")
    os.unlink(dav / "run1" / "sample_R2.fastq.gz")
    code, report = lab.audit_json("--verify", "full")
    assert code == 1
    backup = copy_by_location(report, "run1", "backup")
    assert backup["state"] == "corrupt"
    assert [p["path"] for p in backup["problems"]] == ["SampleSheet.csv"]
    swestore = copy_by_location(report, "run1", "swestore")
    assert swestore["state"] == "incomplete"
    assert [p["path"] for p in swestore["problems"]] == ["run1/sample_R2.fastq.gz"]
    assert copy_by_location(report, "run1", "archive")["state"] == "intact"
