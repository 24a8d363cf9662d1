"""No false PASS on remote copies (issues 10 and 11), end to end through the CLI
against real servers on loopback: moto's S3 server, XRootD and WsgiDAV, OpenSSH.

Bytes are altered behind each server's back while its metadata stays: in moto's
own object store (same ETag, stored checksums, LastModified and size), on the
XRootD data folder with the mtime restored (XRootD keeps the checksum it
computed at ingest), or under a WsgiDAV file whose dCache-style ``Checksums``
property the test chose.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import Lab, copy_by_location, dataset_of, rot_in_place, run_cli, write_tree
from servers.sshd import SSHServer
from threetwoone.checksums import hash_bytes

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from backends.conftest_webdav import DavSite
    from servers.moto_s3 import MotoS3

pytest_plugins = ["servers.webdav_plugin", "servers.s3_plugin", "servers.sftp_plugin"]

R1 = os.urandom(70_000)
FILES: dict[str, bytes] = {
    "run1/sample_R1.fastq.gz": R1,
    "run1/sample_R2.fastq.gz": os.urandom(50_000),
    "README.txt": b"sequencing run 1\n",
}
VICTIM = "run1/sample_R1.fastq.gz"


def local_pair(lab: Lab) -> None:
    """Primary and a tape copy at site-a (the remote copy is the third)."""
    for name, media in (("nas", "disk"), ("tape", "tape")):
        write_tree(lab.location(name, media, "site-a") / "ds", dict(FILES))


def three_copies(lab: Lab, location: dict[str, Any], path: str) -> None:
    local_pair(lab)
    lab.locations["far"] = {"media": "object", "site": "site-b", **location}
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "tape", "path": "ds"},
                       {"location": "far", "path": path}])


def far(report: dict[str, Any]) -> dict[str, Any]:
    return copy_by_location(report, "ds", "far")


# -- S3 (moto's server) ----------------------------------------------------------------

@pytest.fixture
def s3(moto_s3: MotoS3, aws_env: None) -> MotoS3:
    """The session's moto server, with fake credentials in the environment."""
    return moto_s3


def s3_lab(lab: Lab, s3: MotoS3, checksum: str | None = "SHA256") -> str:
    bucket = s3.new_bucket("archive")
    s3.put_tree(bucket, "projects/ds/", FILES, checksum=checksum)
    three_copies(lab, {"kind": "s3", "endpoint_url": s3.endpoint_url, "bucket": bucket,
                       "prefix": "projects/"}, "ds")
    return bucket


def test_s3_found_corruption_is_not_healed_by_the_servers_checksum(lab: Lab,
                                                                  s3: MotoS3) -> None:
    """Issue 11 route 1: bytes decayed at rest under an unchanged ETag, checksum,
    LastModified and size.  Once a read found them corrupt, no later run may
    settle the file by the server's (old) checksum."""
    bucket = s3_lab(lab, s3)
    assert lab.audit_json()[0] == 0
    s3.decay(bucket, f"projects/ds/{VICTIM}", 12_345)
    code, report = lab.audit_json("--force-download", "--verify", "full")
    assert (code, far(report)["state"]) == (1, "corrupt")
    for mode in ("scheduled", "changed"):
        code, report = lab.audit_json("--verify", mode)
        copy = far(report)
        assert (code, copy["state"]) == (1, "corrupt"), mode
        assert copy["methods"] == ["download"]  # read again, never settled by a digest


def test_s3_verify_full_reads_every_byte(lab: Lab, s3: MotoS3) -> None:
    """Issue 11 route 2: --verify full on a copy rotten behind intact metadata."""
    bucket = s3_lab(lab, s3)
    assert lab.audit_json()[0] == 0
    s3.decay(bucket, f"projects/ds/{VICTIM}", 100)
    code, report = lab.audit_json("--verify", "full")
    copy = far(report)
    assert (code, copy["state"], copy["verification"]) == (1, "corrupt", "full")
    assert copy["bytes_read"] == sum(len(data) for data in FILES.values())


def test_s3_server_checksum_never_counts_as_a_full_verification(lab: Lab,
                                                                s3: MotoS3) -> None:
    """Issue 11 route 2: a copy only ever checked by S3's stored checksums is
    never fully verified, for max_age and for status; the schedule then reads it."""
    s3_lab(lab, s3)
    code, report = lab.audit_json()
    copy = far(report)
    assert code == 0 and copy["verification"] == "digest"
    assert copy["last_full_verification"] is None
    code, report = lab.audit_json("--verify", "changed", "--policy", "fixity-90d")
    assert code == 1 and not far(report)["counted"]
    assert ("copy far:ds not counted: never fully verified"
            in "\n".join(dataset_of(report, "ds")["warnings"]))
    status = run_cli("status", "--state", str(lab.state), "--format", "json")
    assert status.exit_code == 1  # something is overdue: never read in full
    [row] = [r for r in json.loads(status.stdout)["copies"] if r["copy"].endswith("/far/ds")]
    assert row["never_verified_files"] == len(FILES) and row["oldest_verification"] is None
    # The fixity schedule downloads what was never read, and then it counts.
    code, report = lab.audit_json("--policy", "fixity-90d")
    copy = far(report)
    assert (code, copy["verification"], copy["counted"]) == (0, "full", True)


def same_crc32(data: bytes, change_at: int, patch_at: int) -> bytes:
    """``data`` with the byte at ``change_at`` changed and the four bytes at
    ``patch_at`` adjusted so that its CRC-32 is unchanged (CRC is affine over
    GF(2): solve for the 32 bits of the patch)."""
    out = bytearray(data)
    out[change_at] ^= 0xA5
    zero = zlib.crc32(bytes(len(data)))
    pivots: dict[int, tuple[int, int]] = {}
    for bit in range(32):
        flip = bytearray(len(data))
        flip[patch_at + bit // 8] = 1 << (bit % 8)
        value, combo = zlib.crc32(flip) ^ zero, 1 << bit
        for top in reversed(range(32)):
            if not value >> top & 1:
                continue
            if top not in pivots:
                pivots[top] = (value, combo)
                break
            value ^= pivots[top][0]
            combo ^= pivots[top][1]
    need, combo = zlib.crc32(bytes(out)) ^ zlib.crc32(data), 0
    for top in reversed(range(32)):
        if need >> top & 1:
            need ^= pivots[top][0]
            combo ^= pivots[top][1]
    assert need == 0
    for bit in range(32):
        if combo >> bit & 1:
            out[patch_at + bit // 8] ^= 1 << (bit % 8)
    assert zlib.crc32(bytes(out)) == zlib.crc32(data) and bytes(out) != data
    return bytes(out)


def test_s3_crc32_alone_never_proves_a_file_intact(lab: Lab, s3: MotoS3) -> None:
    """Issue 11 route 3: SSE-KMS objects uploaded with CRC32 (boto3's default)
    keep only a CRC-32 the auditor can use; other content of the same size and
    CRC-32 must not pass."""
    bucket = s3_lab(lab, s3, checksum="CRC32")
    client = s3.client()
    for name, data in FILES.items():  # re-uploaded encrypted: the ETag is no MD5
        client.put_object(Bucket=bucket, Key=f"projects/ds/{name}", Body=data,
                          ServerSideEncryption="aws:kms", ChecksumAlgorithm="CRC32")
    code, report = lab.audit_json()
    copy = far(report)
    assert code == 0 and copy["verification"] == "full"
    assert "digest (crc32)" in copy["methods"] and "download" in copy["methods"]
    forged = same_crc32(R1, 5_000, 9_000)
    client.put_object(Bucket=bucket, Key=f"projects/ds/{VICTIM}", Body=forged,
                      ServerSideEncryption="aws:kms", ChecksumAlgorithm="CRC32")
    for mode in ("changed", "full"):
        code, report = lab.audit_json("--verify", mode)
        copy = far(report)
        assert (code, copy["state"]) == (1, "corrupt"), mode
        assert [p["path"] for p in copy["problems"]] == [VICTIM]


def test_s3_bucket_pointed_at_a_replica_is_verified_in_full(lab: Lab, s3: MotoS3) -> None:
    """Issue 10 route 2 / issue 11 route 5: ``bucket:`` changed to a replica
    whose objects have the same ETag, LastModified and size, one of them with
    damaged bytes: the old bucket's checks must not vouch for it."""
    bucket = s3_lab(lab, s3)
    assert lab.audit_json()[0] == 0
    replica = s3.new_bucket("replica")
    s3.put_tree(replica, "projects/ds/", FILES, checksum="SHA256")
    for name in FILES:
        s3.same_last_modified(replica, f"projects/ds/{name}", bucket)
    s3.decay(replica, f"projects/ds/{VICTIM}", 777)
    lab.locations["far"]["bucket"] = replica
    code, report = lab.audit_json("--verify", "changed")
    copy = far(report)
    assert (code, copy["state"], copy["verification"]) == (1, "corrupt", "full")
    [warning] = [w for w in dataset_of(report, "ds")["warnings"] if "storage" in w]
    assert f"bucket: {bucket} -> {replica}" in warning
    assert "every file was verified in full" in warning


def test_s3_copy_path_that_is_an_object_is_missing(lab: Lab, s3: MotoS3) -> None:
    bucket = s3_lab(lab, s3)
    s3.client().put_object(Bucket=bucket, Key="projects/solo", Body=b"an object")
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "tape", "path": "ds"},
                       {"location": "far", "path": "solo"}])
    code, report = lab.audit_json()
    assert (code, far(report)["state"]) == (1, "missing")


# -- WebDAV: XRootD (stored checksums, like dCache) and WsgiDAV -----------------------------

def dav_lab(lab: Lab, site: DavSite, **extra: Any) -> str:
    path = site.tree(dict(FILES))
    three_copies(lab, site.settings(**extra), path)
    return path


def test_webdav_found_corruption_is_not_healed_by_the_servers_checksum(
        lab: Lab, xrootd_site: DavSite) -> None:
    """Issue 11 routes 1 and 2 on XRootD: bytes decayed at rest, the server still
    reporting the checksums it computed at ingest."""
    from servers.xrootd import forge_checksum

    path = dav_lab(lab, xrootd_site)
    assert lab.audit_json()[0] == 0
    victim = xrootd_site.local(path) / VICTIM
    for algorithm in ("adler32", "md5"):  # what the storage recorded at ingest
        forge_checksum(victim, algorithm, hash_bytes(R1, [algorithm])[algorithm])
    rot_in_place(victim, 4_321)
    code, report = lab.audit_json("--verify", "full")  # reads every byte, no flag needed
    copy = far(report)
    assert (code, copy["state"], copy["verification"]) == (1, "corrupt", "full")
    code, report = lab.audit_json("--verify", "full", "--force-download")
    assert "the server's md5 checksum differs from the bytes it sent" in \
        "\n".join(far(report)["methods"])
    for mode in ("changed", "scheduled"):
        code, report = lab.audit_json("--verify", mode)
        copy = far(report)
        assert (code, copy["state"]) == (1, "corrupt"), mode
        assert not any(m.startswith("digest") for m in copy["methods"])


def test_webdav_adler32_alone_never_proves_a_file_intact(
        lab: Lab, wsgidav_private_factory: Any) -> None:
    """Issue 11 route 3 on a dCache-like server listing only adler32: an upload
    changed by +1, -2, +1 on three neighbouring bytes keeps its adler32."""
    site: DavSite = wsgidav_private_factory()
    path = dav_lab(lab, site)
    for name, data in FILES.items():
        site.server.set_checksums(f"/{path}/{name}",
                                  f"adler32={hash_bytes(data, ['adler32'])['adler32']}")
    code, report = lab.audit_json()
    copy = far(report)
    assert code == 0 and copy["verification"] == "full"
    assert "digest (adler32)" in copy["methods"]
    changed = bytearray(R1)
    at = next(i for i in range(1000, len(R1)) if R1[i + 1] >= 2 and R1[i] < 255
              and R1[i + 2] < 255)
    changed[at] += 1
    changed[at + 1] -= 2
    changed[at + 2] += 1
    assert hash_bytes(bytes(changed), ["adler32"]) == hash_bytes(R1, ["adler32"])
    victim = site.local(path) / VICTIM
    uploaded = victim.stat().st_mtime_ns + 60 * 10**9
    victim.write_bytes(bytes(changed))  # a new upload: new mtime, same size and adler32
    os.utime(victim, ns=(uploaded, uploaded))
    site.readable(victim)
    for mode in ("changed", "scheduled", "full"):
        code, report = lab.audit_json("--verify", mode)
        copy = far(report)
        assert (code, copy["state"]) == (1, "corrupt"), mode
        assert [p["path"] for p in copy["problems"]] == [VICTIM]


def test_webdav_copy_path_that_is_a_file_is_missing(lab: Lab, wsgidav_site: DavSite) -> None:
    path = dav_lab(lab, wsgidav_site)
    lab.datasets["ds"]["copies"][2]["path"] = f"{path}/README.txt"
    code, report = lab.audit_json()
    copy = far(report)
    assert (code, copy["state"]) == (1, "missing")
    assert copy["detail"].endswith("README.txt is a file, not a folder")


# -- SFTP (OpenSSH) ---------------------------------------------------------------------------

def sftp_settings(sshd: SSHServer, root: Path) -> dict[str, Any]:
    return {"kind": "sftp", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
            "root": str(root), "identity_file": str(sshd.client_key), "timeout": 10}


@pytest.mark.usefixtures("trusted_home")
def test_sftp_root_pointed_at_a_migrated_copy_is_verified_in_full(lab: Lab,
                                                                  sshd: SSHServer) -> None:
    """Issue 10 route 2: ``root`` moved to a migrated copy with one corrupt file of
    the same size and mtime.  SFTP lists no inode, so only the storage identity
    tells the copies apart."""
    old = sshd.data_dir(f"old-{os.urandom(4).hex()}")
    write_tree(old / "ds", dict(FILES))
    three_copies(lab, sftp_settings(sshd, old), "ds")
    assert lab.audit_json()[0] == 0
    new = sshd.data_dir(f"migrated-{os.urandom(4).hex()}")
    shutil.rmtree(new)
    subprocess.run(["cp", "-a", str(old), str(new)], check=True)
    rot_in_place(new / "ds" / VICTIM, 2_000)
    lab.locations["far"]["root"] = str(new)
    code, report = lab.audit_json("--verify", "changed")
    copy = far(report)
    assert (code, copy["state"], copy["verification"]) == (1, "corrupt", "full")
    [warning] = [w for w in dataset_of(report, "ds")["warnings"] if "storage" in w]
    assert f"root: {old} -> {new}" in warning


@pytest.mark.usefixtures("trusted_home")
def test_sftp_copy_path_that_is_a_file_is_missing(lab: Lab, sshd: SSHServer) -> None:
    root = sshd.data_dir(f"file-{os.urandom(4).hex()}")
    write_tree(root, {"ds": b"a file where the copy's folder should be"})
    three_copies(lab, sftp_settings(sshd, root), "ds")
    code, report = lab.audit_json()
    copy = far(report)
    assert (code, copy["state"]) == (1, "missing")
    assert copy["detail"].endswith("is a file, not a folder")


def test_same_crc32_forgery_is_what_it_claims() -> None:
    data = os.urandom(4096)
    forged = same_crc32(data, 10, 2000)
    assert len(forged) == len(data) and zlib.crc32(forged) == zlib.crc32(data)
    assert base64.b64encode(forged) != base64.b64encode(data)
