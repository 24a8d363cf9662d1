"""End-to-end audits with an S3 copy (moto's real server on loopback) through the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    Lab,
    assert_counted_once,
    assert_manifest_unreadable,
    assert_unreadable_not_bit_rot,
    copy_by_location,
    dataset_of,
    run_subprocess,
    write_tree,
)
from servers.fault_proxy import Fault, FaultProxy
from servers.moto_s3 import MotoS3, fake_aws_environment, sha256_b64
from threetwoone.backends import s3 as s3_backend

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

FILES = {
    "run1/sample_R1.fastq.gz": os.urandom(70_000),
    "run1/sample_R2.fastq.gz": os.urandom(50_000),
    "README.txt": b"sequencing run 1\n",
}


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_aws_environment(monkeypatch, tmp_path / "aws")


def s3_lab(lab: Lab, server: MotoS3, files: dict[str, bytes] | None = None,
           checksum: str | None = "SHA256", **settings: Any) -> str:
    """Primary on a NAS and a tape at site-a; the S3 copy at site-b."""
    files = FILES if files is None else files
    tree: dict[str | bytes, bytes] = {name: data for name, data in files.items()}
    for name, media in (("nas", "disk"), ("tape", "tape")):
        write_tree(lab.location(name, media, "site-a") / "P1" / "run1", tree)
    bucket = server.new_bucket("archive")
    server.put_tree(bucket, "projects/P1/run1/", files, checksum=checksum)
    lab.locations["archive"] = {"kind": "s3", "endpoint_url": server.endpoint_url,
                                "bucket": bucket, "prefix": "projects/", "media": "object",
                                "site": "site-b", **settings}
    lab.dataset("ds", [{"location": "nas", "path": "P1/run1", "primary": True},
                       {"location": "tape", "path": "P1/run1"},
                       {"location": "archive", "path": "P1/run1"}])
    return bucket


def test_s3_copy_verified_by_server_digests(lab: Lab, s3: MotoS3) -> None:
    s3_lab(lab, s3)
    code, report = lab.audit_json()
    assert code == 0
    ds = dataset_of(report, "ds")
    assert ds["status"] == "pass"
    assert ds["counts"] == {"copies": 3, "media": 3, "offsite": 1, "sites": 2}
    archive = copy_by_location(report, "ds", "archive")
    assert archive["state"] == "intact" and archive["counted"] and archive["offsite"]
    assert archive["verification"] == "digest"
    assert archive["files"]["present"] == 3
    # Every byte again, when asked: the same verdict, established by download.
    code, report = lab.audit_json("--verify", "full", "--force-download")
    archive = copy_by_location(report, "ds", "archive")
    assert code == 0 and archive["state"] == "intact" and archive["verification"] == "full"


def test_force_download_location_setting(lab: Lab, s3: MotoS3) -> None:
    s3_lab(lab, s3, force_download=True)
    code, report = lab.audit_json()
    assert code == 0
    assert copy_by_location(report, "ds", "archive")["verification"] == "full"


@pytest.mark.parametrize("damage", ["corrupt", "incomplete", "missing"])
@pytest.mark.parametrize("force", [False, True], ids=["digest", "download"])
def test_damaged_s3_copy(lab: Lab, s3: MotoS3, damage: str, force: bool) -> None:
    bucket = s3_lab(lab, s3)
    assert lab.audit_json()[0] == 0  # records the reference
    client = s3.client()
    key = "projects/P1/run1/run1/sample_R1.fastq.gz"
    if damage == "corrupt":
        data = bytearray(FILES["run1/sample_R1.fastq.gz"])
        data[12345] ^= 0x01  # same size: only the content tells
        client.put_object(Bucket=bucket, Key=key, Body=bytes(data), ChecksumAlgorithm="SHA256")
    elif damage == "incomplete":
        client.delete_object(Bucket=bucket, Key=key)
    else:
        for name in FILES:
            client.delete_object(Bucket=bucket, Key=f"projects/P1/run1/{name}")
    args = ("--verify", "full", "--force-download") if force else ("--verify", "full")
    code, report = lab.audit_json(*args)
    assert code == 1
    ds = dataset_of(report, "ds")
    archive = copy_by_location(report, "ds", "archive")
    assert ds["status"] == "fail"
    assert archive["state"] == damage and not archive["counted"]
    if damage == "corrupt":
        assert archive["problems"][0]["path"] == "run1/sample_R1.fastq.gz"
        assert archive["problems"][0]["problem"] == "corrupt"
        # --verify full reads every byte, server digests or not.
        assert archive["verification"] == "full"
    if damage == "incomplete":
        assert archive["files"]["missing"] == 1


def test_multipart_object_is_downloaded_not_misjudged(lab: Lab, s3: MotoS3) -> None:
    big = {"big.bin": os.urandom(5 * 1024 * 1024 + 1000), "small.txt": b"small\n"}
    bucket = s3_lab(lab, s3, files=big)
    # Replace big.bin by a multipart upload with a composite SHA256 (moto's default
    # sends it without "-N" suffix): it must not be read as the file's sha256.
    s3.put_multipart(bucket, "projects/P1/run1/big.bin",
                     [big["big.bin"][:5 * 1024 * 1024], big["big.bin"][5 * 1024 * 1024:]],
                     checksum="SHA256")
    code, report = lab.audit_json()
    archive = copy_by_location(report, "ds", "archive")
    assert code == 0, archive
    assert archive["state"] == "intact"
    # One file had to be downloaded, the other was settled by its sha256: the copy's
    # verification says the weaker of the two.
    assert archive["verification"] == "digest"
    assert "download" in archive["methods"]


def test_wrong_credentials_exit_3(lab: Lab, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    server = MotoS3()
    try:
        s3_lab(lab, server)
        server.create_access_key()
        server.enforce_auth(True)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000")
        code, report = lab.audit_json()
        assert code == 3
        archive = copy_by_location(report, "ds", "archive")
        assert archive["state"] == "unreachable"
        assert dataset_of(report, "ds")["status"] == "unknown"
        # A real process: one clear line on the problem, no traceback.
        lab.write()
        proc = run_subprocess("audit", str(lab.inventory), "--state", str(lab.state), "-q")
        assert proc.returncode == 3
        assert "InvalidAccessKeyId" in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        server.enforce_auth(False)
        server.stop()


def test_endpoint_down_exit_3(lab: Lab) -> None:
    server = MotoS3()
    s3_lab(lab, server)
    server.stop()
    code, report = lab.audit_json()
    assert code == 3
    archive = copy_by_location(report, "ds", "archive")
    assert archive["state"] == "unreachable"
    # The location says why, once; the copy points to it.
    assert archive["detail"] == "location archive is unreachable (see locations)"
    [location] = [loc for loc in report["locations"] if loc["name"] == "archive"]
    assert location["state"] == "unreachable" and location["kind"] == "s3"
    assert "connection refused" in location["detail"]


def test_lying_server_told_apart_from_corruption_by_reading_the_bytes(lab: Lab,
                                                                     s3: MotoS3) -> None:
    proxy = FaultProxy(upstream_port=s3.port)
    proxy.start()
    try:
        s3_lab(lab, s3)
        lab.locations["archive"]["endpoint_url"] = proxy.endpoint_url
        # The server reports a wrong SHA-256 for one object whose bytes are intact.
        proxy.faults.append(Fault("HEAD", "sample_R1.fastq.gz", times=99, headers={
            "x-amz-checksum-sha256": sha256_b64(b"something else")}))
        code, report = lab.audit_json()
        archive = copy_by_location(report, "ds", "archive")
        assert code == 1 and archive["state"] == "corrupt"
        assert "(server-side digest)" in archive["problems"][0]["detail"]
        # A file whose last check failed is cleared only by reading its bytes: the
        # next plain run downloads it and finds the data fine (the digest was wrong).
        code, report = lab.audit_json("--verify", "changed")
        archive = copy_by_location(report, "ds", "archive")
        assert code == 0 and archive["state"] == "intact"
        assert archive["verified_files"] == 1 and archive["methods"] == ["download"]
        code, report = lab.audit_json("--verify", "full")
        archive = copy_by_location(report, "ds", "archive")
        assert code == 0 and archive["state"] == "intact"
        assert archive["verification"] == "full"
    finally:
        proxy.stop()


@pytest.mark.parametrize("fault", [
    {"cut_after": 1000, "no_length": True},  # closes early: looks like a whole body
    {"extra": b"trailing bytes"},            # more than the listing said
], ids=["ends-early", "runs-long"])
def test_a_body_of_the_wrong_length_is_unreadable_not_bit_rot(
        lab: Lab, s3: MotoS3, monkeypatch: pytest.MonkeyPatch, fault: dict[str, Any]) -> None:
    """A GET body shorter or longer than the listed size makes the object
    unreadable and the copy ``error`` (exit 3), after resuming where it
    stopped: never ``corrupt``, never "bit rot"."""
    monkeypatch.setattr(s3_backend, "RESUME_BACKOFF", 0.001)
    proxy = FaultProxy(upstream_port=s3.port)
    proxy.start()
    try:
        s3_lab(lab, s3)
        lab.locations["archive"]["endpoint_url"] = proxy.endpoint_url
        assert lab.audit_json()[0] == 0
        proxy.faults.append(Fault("GET", "sample_R1.fastq.gz", times=99, **fault))
        result = lab.audit("--format", "json", "--verify", "full", "--force-download")
        assert_unreadable_not_bit_rot(result, "archive", "run1/sample_R1.fastq.gz")
        proxy.faults.clear()
        code, report = lab.audit_json("--verify", "full", "--force-download")
        assert code == 0 and copy_by_location(report, "ds", "archive")["state"] == "intact"
    finally:
        proxy.stop()


def test_a_body_that_ends_early_once_is_resumed(lab: Lab, s3: MotoS3,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_backend, "RESUME_BACKOFF", 0.001)
    proxy = FaultProxy(upstream_port=s3.port)
    proxy.start()
    try:
        s3_lab(lab, s3)
        lab.locations["archive"]["endpoint_url"] = proxy.endpoint_url
        assert lab.audit_json()[0] == 0
        proxy.seen.clear()
        proxy.faults.append(Fault("GET", "sample_R1.fastq.gz", cut_after=1000,
                                  no_length=True, times=1))
        code, report = lab.audit_json("--verify", "full", "--force-download")
        assert code == 0 and copy_by_location(report, "ds", "archive")["state"] == "intact"
        assert len([p for p in proxy.requests("GET") if "sample_R1" in p]) == 2
    finally:
        proxy.stop()


@pytest.mark.parametrize("no_length", [True, False], ids=["no-length", "with-length"])
def test_a_producer_manifest_cut_short_is_not_a_shorter_manifest(lab: Lab, s3: MotoS3,
                                                                 no_length: bool) -> None:
    """A manifest read from S3 whose body ends early at a line boundary would
    name fewer files, and the copies' other files would only be "extra": the
    read must fail instead (the reference is unknown, exit 3)."""
    import hashlib

    proxy = FaultProxy(upstream_port=s3.port)
    proxy.start()
    try:
        manifest = "".join(f"{hashlib.md5(data).hexdigest()}  {name}\n"
                           for name, data in sorted(FILES.items())).encode()
        bucket = s3_lab(lab, s3, files={**FILES, "checksums.md5": manifest})
        lab.locations["archive"]["endpoint_url"] = proxy.endpoint_url
        lab.datasets["ds"]["copies"] = [
            {"location": "archive", "path": "P1/run1", "primary": True},
            {"location": "nas", "path": "P1/run1"}, {"location": "tape", "path": "P1/run1"}]
        lab.datasets["ds"]["checksums"] = {"file": "checksums.md5", "algorithm": "md5"}
        assert bucket
        first_line = manifest.index(b"\n") + 1
        proxy.faults.append(Fault("GET", "checksums.md5", cut_after=first_line,
                                  no_length=no_length, times=99))
        assert_manifest_unreadable(lab.audit("--format", "json"))
    finally:
        proxy.stop()


@pytest.mark.parametrize("twin", [
    {"endpoint_url": "http://localhost:{port}"},
    {"endpoint_url": "http://127.0.0.1:{port}/"},
    {"endpoint_url": "http://LocalHost:{port}", "prefix": "./projects//"},
    {"path": "./P1/run1/"},
], ids=["localhost", "trailing-slash", "host-case-and-prefix", "copy-path"])
def test_one_bucket_by_two_addresses_counts_once(lab: Lab, s3: MotoS3,
                                                 twin: dict[str, str]) -> None:
    """One physical copy spelled two ways (another host name for the endpoint,
    its address written differently, the copy path or prefix with ``./``) is
    one copy: with a primary, two copies of 3 required, the audit fails."""
    write_tree(lab.location("nas", "disk", "site-a") / "P1" / "run1",
               dict[str | bytes, bytes](FILES))
    bucket = s3.new_bucket("archive")
    s3.put_tree(bucket, "projects/P1/run1/", FILES, checksum="SHA256")
    settings = {"kind": "s3", "endpoint_url": s3.endpoint_url, "bucket": bucket,
                "prefix": "projects/", "media": "object", "site": "site-b"}
    lab.locations["archive"] = settings
    lab.locations["archive-2"] = {
        **settings, "site": "site-c",
        **{k: v.format(port=s3.port) for k, v in twin.items() if k != "path"}}
    lab.dataset("ds", [{"location": "nas", "path": "P1/run1", "primary": True},
                       {"location": "archive", "path": "P1/run1"},
                       {"location": "archive-2", "path": twin.get("path", "P1/run1")}])
    assert_counted_once(*lab.audit_json(), twin="archive-2")
