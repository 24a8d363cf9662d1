"""The S3 backend against moto's real server on loopback (never its in-process mocks)."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from backends.contract import (
    BackendContract,
    Capabilities,
    Files,
    Storage,
    copy_state,
    files_of,
    fresh_name,
)
from servers.moto_s3 import SECRET_KEY, Fault, FaultProxy, MotoS3
from servers.s3_listing import ListingServer
from threetwoone.backends import Backend, open_backend
from threetwoone.backends import s3 as s3_module
from threetwoone.backends.interface import (
    CopyFailed,
    Entry,
    HashResult,
    LocationUnreachable,
    WalkProblem,
)
from threetwoone.backends.s3 import S3Backend, s3_checksum_to_hex, server_digests
from threetwoone.checksums import hash_bytes
from threetwoone.inventory import Location

pytestmark = pytest.mark.usefixtures("aws_env")

ALL = ("xxh3_128", "md5", "sha256", "crc32", "sha1")

FILES = {
    "sample_R1.fastq.gz": os.urandom(40_000),
    "sample_R2.fastq.gz": os.urandom(30_000),
    "reports/multiqc.html": b"<html>qc</html>\n",
    "empty.txt": b"",
}


def backend_for(endpoint_url: str, bucket: str, **settings: Any) -> S3Backend:
    location = Location(name="archive", kind="s3", media="object", site="elsewhere",
                        settings={"bucket": bucket, "endpoint_url": endpoint_url, **settings})
    backend = open_backend(location)
    assert isinstance(backend, S3Backend)
    return backend


@pytest.fixture
def connected(moto_s3: MotoS3) -> Iterator[tuple[S3Backend, str]]:
    bucket = moto_s3.new_bucket()
    backend = backend_for(moto_s3.endpoint_url, bucket, prefix="projects/")
    yield backend, bucket
    backend.close()


# -- listing -----------------------------------------------------------------------------


def test_walk_lists_files_sorted_below_the_root_only(moto_s3: MotoS3,
                                                     connected: tuple[S3Backend, str]) -> None:
    backend, bucket = connected
    moto_s3.put_tree(bucket, "projects/P1/run1/", FILES)
    moto_s3.put_tree(bucket, "projects/P1/run10/", {"other.txt": b"not in run1"})
    moto_s3.put_tree(bucket, "projects/P1/run1/", {"folder/": b""})  # a console's folder marker
    backend.connect()
    entries = list(backend.walk("P1/run1"))
    assert [e.path for e in entries] == sorted(FILES)
    by_path = {e.path: e for e in entries if isinstance(e, Entry)}
    assert by_path["sample_R1.fastq.gz"].size == 40_000
    assert by_path["empty.txt"].size == 0
    assert all(e.mtime_ns and e.ident for e in by_path.values())
    # Slashes around the copy path do not matter.
    assert [e.path for e in backend.walk("/P1/run1/")] == sorted(FILES)


def test_stat_root_exists_only_with_objects_below_it(moto_s3: MotoS3,
                                                      connected: tuple[S3Backend, str]) -> None:
    backend, bucket = connected
    moto_s3.put_tree(bucket, "projects/P1/run10/", {"x": b"x"})
    backend.connect()
    assert backend.stat_root("P1/run1") is None  # run10 is not below run1
    assert backend.stat_root("P1/run10") is not None
    moto_s3.put_tree(bucket, "projects/P1/run1/", {"a": b"a"})
    first = backend.stat_root("P1/run1")
    assert first is not None and first.identity
    # The same storage declared twice is recognisable.
    twin = backend_for(moto_s3.endpoint_url, bucket, prefix="projects")
    assert twin.stat_root("P1/run1//") == first
    assert backend.stat_root("P1/run10") != first


def test_pagination_over_more_than_1000_keys(moto_s3: MotoS3,
                                             connected: tuple[S3Backend, str]) -> None:
    backend, bucket = connected
    client = moto_s3.plain_client()
    names = [f"d{i % 7}/f{i:05d}" for i in range(1050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: client.put_object(Bucket=bucket, Key=f"projects/big/{n}",
                                                  Body=n.encode()), names))
    backend.connect()
    calls: list[str] = []
    backend.client.meta.events.register(
        "after-call.s3.ListObjectsV2", lambda **kw: calls.append(kw["model"].name))
    entries = list(backend.walk("big"))
    assert [e.path for e in entries] == sorted(names)
    assert len(calls) == 2  # 1000 + 50: the second page was fetched


def test_unusable_keys_are_walk_problems(moto_s3: MotoS3,
                                         connected: tuple[S3Backend, str]) -> None:
    backend, bucket = connected
    moto_s3.put_tree(bucket, "projects/odd/", {"good.txt": b"ok", "a//b.txt": b"?"})
    backend.connect()
    items = list(backend.walk("odd"))
    problem, entry = items
    assert isinstance(problem, WalkProblem) and isinstance(entry, Entry)
    assert "a//b.txt" in problem.detail and entry.path == "good.txt"


# -- content: digests and downloads ------------------------------------------------------


@pytest.mark.parametrize("checksum,algorithm,via", [
    ("SHA256", "sha256", "x-amz-checksum-sha256"),
    ("CRC32", "crc32", "x-amz-checksum-crc32"),
    ("SHA1", "sha1", "x-amz-checksum-sha1"),
    (None, "md5", "ETag md5"),
])
def test_server_checksum_is_trusted_when_asked_for(moto_s3: MotoS3,
                                                   connected: tuple[S3Backend, str],
                                                   checksum: str | None, algorithm: str,
                                                   via: str) -> None:
    backend, bucket = connected
    moto_s3.put_tree(bucket, "projects/run/", FILES, checksum=checksum)
    backend.connect()
    entries = list(files_of(backend, "run").values())
    results = {r.path: r for r in backend.hash_files("run", entries, [algorithm, "xxh3_128"])}
    for path, data in FILES.items():
        assert results[path].method == "digest"
        assert results[path].via == via
        assert results[path].digests == {algorithm: hash_bytes(data, [algorithm])[algorithm]}
        assert results[path].size == len(data)


def test_without_a_usable_server_digest_the_bytes_are_downloaded(
        moto_s3: MotoS3, connected: tuple[S3Backend, str]) -> None:
    backend, bucket = connected
    moto_s3.put_tree(bucket, "projects/run/", FILES, checksum="SHA256")
    backend.connect()
    entries = list(files_of(backend, "run").values())
    for algorithms, force in ((["xxh3_128"], False), (["sha256", "xxh3_128"], True)):
        results = list(backend.hash_files("run", entries, algorithms, force_full=force))
        assert {r.method for r in results} == {"full"}
        for result in results:
            assert result.digests == hash_bytes(FILES[result.path], algorithms)


def test_kms_encrypted_object_etag_is_not_md5(moto_s3: MotoS3,
                                              connected: tuple[S3Backend, str]) -> None:
    backend, bucket = connected
    data = FILES["sample_R1.fastq.gz"]
    moto_s3.plain_client().put_object(Bucket=bucket, Key="projects/kms/f", Body=data,
                                      ServerSideEncryption="aws:kms")
    backend.connect()
    (result,) = backend.hash_files("kms", list(files_of(backend, "kms").values()), ["md5"])
    assert result.method == "full"
    assert result.digests["md5"] == hashlib.md5(data).hexdigest()


def test_multipart_object_etag_and_composite_checksums_are_not_misread(
        moto_s3: MotoS3, connected: tuple[S3Backend, str]) -> None:
    backend, bucket = connected
    parts = [os.urandom(5 * 1024 * 1024), b"the last part"]
    data = b"".join(parts)
    moto_s3.put_multipart(bucket, "projects/mp/plain.bin", parts)
    moto_s3.put_multipart(bucket, "projects/mp/composite.bin", parts, checksum="SHA256")
    moto_s3.put_multipart(bucket, "projects/mp/full.bin", parts, checksum="CRC32",
                          checksum_type="FULL_OBJECT")
    backend.connect()
    entries = files_of(backend, "mp")
    head = backend.client.head_object(Bucket=bucket, Key="projects/mp/composite.bin",
                                      ChecksumMode="ENABLED")
    # moto, like some S3-compatible stores, sends a composite value with no "-N"
    # suffix and no checksum type: reading it as the object's sha256 would be wrong.
    assert s3_checksum_to_hex(head["ChecksumSHA256"], 32) != hashlib.sha256(data).hexdigest()
    assert entries["plain.bin"].ident and entries["plain.bin"].ident.endswith('-2"')

    results = {r.path: r for r in backend.hash_files(
        "mp", list(entries.values()), ["md5", "sha256", "crc32"])}
    assert results["plain.bin"].method == "full"  # the "-2" ETag is not an MD5
    assert results["composite.bin"].method == "full"
    assert results["full.bin"].method == "digest"
    assert results["full.bin"].via == "x-amz-checksum-crc32"
    assert results["full.bin"].digests == {"crc32": f"{zlib.crc32(data):08x}"}
    for name in ("plain.bin", "composite.bin"):
        assert results[name].digests == hash_bytes(data, ["md5", "sha256", "crc32"])


@pytest.mark.parametrize("head,expected", [
    ({"ETag": '"5d41402abc4b2a76b9719d911017c592"'},
     {"md5": "5d41402abc4b2a76b9719d911017c592"}),
    ({"ETag": '"5d41402abc4b2a76b9719d911017c592-3"'}, {}),
    ({"ETag": '"5d41402abc4b2a76b9719d911017c592"', "ServerSideEncryption": "aws:kms"}, {}),
    ({"ETag": '"5d41402abc4b2a76b9719d911017c592"', "SSECustomerAlgorithm": "AES256"}, {}),
    ({"ETag": '"5d41402abc4b2a76b9719d911017c592"', "ServerSideEncryption": "AES256"},
     {"md5": "5d41402abc4b2a76b9719d911017c592"}),
    ({"ChecksumCRC32": "NhCmhg=="}, {"crc32": "3610a686"}),
    ({"ChecksumCRC32": "NhCmhg==-4"}, {}),                      # composite, suffixed
    ({"ChecksumCRC32": "NhCmhg==", "ChecksumType": "COMPOSITE"}, {}),
    ({"ChecksumCRC32": "NhCmhg==", "ETag": '"ab-2"'}, {}),       # multipart, type unknown
    ({"ChecksumCRC32": "NhCmhg==", "ETag": '"ab-2"', "ChecksumType": "FULL_OBJECT"},
     {"crc32": "3610a686"}),
    ({"ChecksumSHA256": "NhCmhg=="}, {}),                        # wrong length
    ({"ChecksumSHA256": "not base64!"}, {}),
    ({"ChecksumCRC64NVME": base64.b64encode(bytes(range(8))).decode()},
     {"crc64nvme": "0001020304050607"}),
])
def test_server_digests_rules(head: dict[str, str], expected: dict[str, str]) -> None:
    assert {a: v for a, (v, _) in server_digests(head).items()} == expected


def test_the_audit_never_writes(moto_s3: MotoS3, connected: tuple[S3Backend, str]) -> None:
    backend, bucket = connected
    moto_s3.put_tree(bucket, "projects/run/", FILES, checksum="SHA256")
    backend.connect()
    operations: set[str] = set()
    backend.client.meta.events.register(
        "before-call.s3", lambda **kw: operations.add(kw["model"].name))
    assert copy_state(backend, "run", FILES, ["sha256"])[0] == "intact"
    assert copy_state(backend, "run", FILES, ["sha256"], force_full=True)[0] == "intact"
    backend.open_read("run", "empty.txt").close()
    assert operations == {"ListObjectsV2", "HeadObject", "GetObject"}


# -- faults --------------------------------------------------------------------------------


def test_wrong_credentials_make_the_location_unreachable(
        moto_s3_private: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    server = moto_s3_private
    bucket = server.new_bucket()
    server.put_tree(bucket, "run/", FILES)
    key_id, secret = server.create_access_key()
    server.enforce_auth(True)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000")
    with pytest.raises(LocationUnreachable, match=r"access denied \(InvalidAccessKeyId\)"):
        backend_for(server.endpoint_url, bucket).connect()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    with pytest.raises(LocationUnreachable) as caught:
        backend_for(server.endpoint_url, bucket).connect()
    assert "SignatureDoesNotMatch" in str(caught.value)
    assert "\n" not in str(caught.value)

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    allowed = backend_for(server.endpoint_url, bucket)
    allowed.connect()
    assert copy_state(allowed, "run", FILES, ["md5"])[0] == "intact"


def test_no_credentials_at_all(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(LocationUnreachable, match="no usable AWS credentials"):
        backend_for(moto_s3.endpoint_url, "any-bucket").connect()
    with pytest.raises(LocationUnreachable, match="could not be found"):
        backend_for(moto_s3.endpoint_url, "any-bucket", profile="nosuchprofile").connect()


def test_missing_bucket_is_unreachable(moto_s3: MotoS3) -> None:
    with pytest.raises(LocationUnreachable, match="bucket 'no-such-bucket' does not exist"):
        backend_for(moto_s3.endpoint_url, "no-such-bucket").connect()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_endpoint_refusing_connections(moto_s3: MotoS3) -> None:
    with pytest.raises(LocationUnreachable, match=r"connection refused by http://127\.0\.0\.1:"):
        backend_for(f"http://127.0.0.1:{_closed_port()}", "bucket").connect()


def test_dns_failure() -> None:
    with pytest.raises(LocationUnreachable,
                       match=r"cannot resolve host 's3.nonexistent.invalid' \(DNS\)"):
        backend_for("https://s3.nonexistent.invalid", "bucket").connect()


def test_endpoint_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts; nobody ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(LocationUnreachable, match="timed out"):
            backend_for(url, "bucket", timeout=0.3).connect()


def test_server_stopped_mid_audit(moto_s3_private: MotoS3) -> None:
    server = moto_s3_private
    bucket = server.new_bucket()
    many = {f"f{i:02d}": os.urandom(2000) for i in range(10)}
    server.put_tree(bucket, "run/", many, checksum="SHA256")
    backend = backend_for(server.endpoint_url, bucket)
    backend.connect()
    entries = list(files_of(backend, "run").values())
    results = backend.hash_files("run", entries, ["sha256"])
    first: HashResult = next(results)
    assert first.error is None and first.method == "digest"
    server.stop()
    with pytest.raises(CopyFailed, match="connection refused") as caught:
        list(results)
    assert "\n" not in str(caught.value)
    with pytest.raises(CopyFailed, match="connection refused"):
        list(backend.hash_files("run", entries, ["sha256"], force_full=True))
    with pytest.raises(LocationUnreachable, match="connection refused"):
        backend_for(server.endpoint_url, bucket).connect()


def test_5xx_answers_are_retried(moto_s3: MotoS3, s3_fault_proxy: FaultProxy) -> None:
    bucket = moto_s3.new_bucket()
    moto_s3.put_tree(bucket, "run/", FILES)
    backend = backend_for(s3_fault_proxy.endpoint_url, bucket)
    backend.connect()
    entries = files_of(backend, "run")
    one = [entries["sample_R1.fastq.gz"]]
    # One 503 (AWS_MAX_ATTEMPTS=2 in the tests): botocore retries, the file is read.
    s3_fault_proxy.faults.append(Fault("GET", "sample_R1.fastq.gz", status=503, times=1))
    (result,) = backend.hash_files("run", one, ["md5"], force_full=True)
    assert result.error is None and result.method == "full"
    assert result.digests["md5"] == hashlib.md5(FILES["sample_R1.fastq.gz"]).hexdigest()
    assert [s for m, _, s in s3_fault_proxy.seen if m == "GET"][-2:] == [503, 200]
    # Failing every attempt: that file is unreadable, never corrupt, and others go on.
    s3_fault_proxy.faults.append(Fault("HEAD", "sample_R1.fastq.gz", status=503, times=2))
    results = {r.path: r for r in backend.hash_files("run", list(entries.values()), ["md5"])}
    assert results["sample_R1.fastq.gz"].error
    assert "503" in results["sample_R1.fastq.gz"].error
    assert all(r.error is None for p, r in results.items() if p != "sample_R1.fastq.gz")


def test_download_cut_off_mid_body_resumes(moto_s3: MotoS3, s3_fault_proxy: FaultProxy,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "RESUME_BACKOFF", 0.0)  # no pauses between resumes

    bucket = moto_s3.new_bucket()
    moto_s3.put_tree(bucket, "run/", FILES)
    backend = backend_for(s3_fault_proxy.endpoint_url, bucket)
    backend.connect()
    entry = files_of(backend, "run")["sample_R1.fastq.gz"]
    s3_fault_proxy.faults.append(Fault("GET", "sample_R1.fastq.gz", cut_after=10_000, times=1))
    (result,) = backend.hash_files("run", [entry], ["sha256"], force_full=True)
    assert result.error is None
    assert result.digests["sha256"] == hashlib.sha256(FILES["sample_R1.fastq.gz"]).hexdigest()
    # Cut every time: unreadable, with a reason, after a bounded number of tries.
    s3_fault_proxy.faults.append(Fault("GET", "sample_R1.fastq.gz", cut_after=100, times=99))
    (result,) = backend.hash_files("run", [entry], ["sha256"], force_full=True)
    assert result.error and "broke off" in result.error


def test_endpoint_with_credentials_is_refused_without_echoing_it() -> None:
    location = Location(name="archive", kind="s3", media="object", site="x",
                        settings={"bucket": "b",
                                  "endpoint_url": "http://AKIAX:s3cret@127.0.0.1:9/"})
    backend = S3Backend("archive", location)
    with pytest.raises(LocationUnreachable, match="AWS credential chain") as info:
        backend.connect()
    assert "s3cret" not in str(info.value) and "s3cret" not in backend.where


def test_storage_identity_names_the_bucket_owner_where_the_server_tells(
        moto_s3: MotoS3, s3_fault_proxy: FaultProxy) -> None:
    bucket = moto_s3.new_bucket()
    moto_s3.put_tree(bucket, "projects/ds/", {"f": b"x"})
    owner = moto_s3.client().get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    backend = backend_for(moto_s3.endpoint_url, bucket, prefix="projects/")
    root = backend.stat_root("ds")
    assert root is not None
    facts = backend.storage_identity("./ds/", root)
    assert facts == {"kind": "s3", "endpoint": moto_s3.endpoint_url, "bucket": bucket,
                     "prefix": "projects/ds/", "owner": owner}
    # Credentials that may not read the ACL: the owner is left out, every time.
    denied = backend_for(s3_fault_proxy.endpoint_url, bucket, prefix="projects/")
    denied.connect()
    s3_fault_proxy.faults.append(Fault("GET", bucket, status=403, times=1))
    assert denied.bucket_owner() is None
    assert "owner" not in denied.storage_identity("ds", root)
    # A server failing (after retries) stops the copy instead.
    failing = backend_for(s3_fault_proxy.endpoint_url, bucket, prefix="projects/")
    failing.connect()
    s3_fault_proxy.faults.append(Fault("GET", bucket, status=503, times=99))
    with pytest.raises(CopyFailed, match="owner"):
        failing.bucket_owner()


# -- the backend contract (contract.py), on moto --------------------------------------------


class S3Storage(Storage):
    """Copies below ``projects/`` in a bucket of its own on moto's server."""

    #: S3 has no folders (a copy exists while a key lies below it), no links,
    #: no special files, and its keys are UTF-8; moto's server answers a PUT of
    #: a key holding a newline with 404 (S3 itself takes it).
    capabilities = Capabilities(name_gaps=frozenset({"not-utf8", "newline"}), symlinks=False,
                                special_files=False, folders=False,
                                unlistable_folders=False, server_digests=True)
    secrets = (SECRET_KEY,)

    def __init__(self, server: MotoS3) -> None:
        super().__init__()
        self.server = server
        self.bucket = server.new_bucket()

    def location(self, **settings: Any) -> Location:
        return Location(name="archive", kind="s3", media="object", site="elsewhere",
                        settings={"kind": "s3", "bucket": self.bucket, "prefix": "projects/",
                                  "endpoint_url": self.server.endpoint_url, **settings})

    def tree(self, files: Files) -> str:
        path = fresh_name()
        self.server.put_tree(self.bucket, f"projects/{path}/",
                             {os.fsdecode(name): data for name, data in files.items()},
                             checksum="SHA256")
        return path

    def damage(self, path: str, relpath: str | bytes, how: str) -> None:
        key = f"projects/{path}/{os.fsdecode(relpath)}"
        client = self.server.client()
        if how == "remove":
            client.delete_object(Bucket=self.bucket, Key=key)
            return
        data = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        if how == "rot":  # behind the API: ETag, checksums and LastModified kept
            self.server.decay(self.bucket, key, len(data) // 2)
            return
        changed = {"grow": data + b"grown", "shrink": data[:len(data) // 2],
                   "rewrite": bytes(b ^ 0xFF for b in data)}[how]
        client.put_object(Bucket=self.bucket, Key=key, Body=changed, ChecksumAlgorithm="SHA256")

    def big_copy(self, count: int) -> tuple[Backend, str]:
        """moto re-sorts the whole bucket for every page (20,000 keys took 100 s):
        the listing comes from a server that makes keys up as it pages."""
        server = ListingServer("big", "projects/ds/", count)
        server.start()
        self.cleanup(server.stop)
        backend = open_backend(Location(
            name="big", kind="s3", media="object", site="x",
            settings={"bucket": "big", "endpoint_url": server.endpoint_url,
                      "prefix": "projects/"}))
        backend.connect()
        return backend, "ds"


class TestS3Contract(BackendContract):
    storage_kind = S3Storage

    @pytest.fixture
    def storage(self, moto_s3: MotoS3) -> Iterator[S3Storage]:
        storage = S3Storage(moto_s3)
        yield storage
        storage.close()
