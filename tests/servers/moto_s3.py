"""A real S3 endpoint on loopback for tests: moto's server, not its in-process mocks.

``ThreadedMotoServer`` is started on 127.0.0.1 with port 0, so the kernel picks a
free port and nothing races for it; ``start()`` returns once the socket listens.
Fake credentials are set through the environment by the ``aws_env`` fixture only,
and the developer's own ``~/.aws`` is hidden so it can neither leak in nor break
a test.

``FaultProxy`` (servers/fault_proxy.py) sits between the backend and moto to
produce what moto cannot: 5xx answers and connections cut in the middle of a body.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import settings as moto_settings
from moto.server import ThreadedMotoServer

from servers.fault_proxy import Fault, FaultProxy

REGION = "us-east-1"
ACCESS_KEY = "AKIATHREETWOONETEST0"
SECRET_KEY = "threetwoone-test-secret-not-a-real-one"

_bucket_numbers = itertools.count(1)


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class MotoS3:
    """One moto server and a client (with the fake credentials) to seed it."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.port = port
        self.endpoint_url = f"http://{host}:{port}"
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.stop()

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        return boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            region_name=REGION,
        ).client("s3", endpoint_url=self.endpoint_url)

    def new_bucket(self, stem: str = "bucket") -> str:
        """A fresh bucket, so tests sharing one server never see each other's keys."""
        name = f"{stem}-{next(_bucket_numbers)}"
        self.client().create_bucket(Bucket=name)
        return name

    # -- seeding -------------------------------------------------------------------
    def put_tree(self, bucket: str, prefix: str, files: Mapping[str, bytes],
                 checksum: str | None = None) -> None:
        """Upload ``files`` below ``prefix`` in one part each.

        ``checksum`` ("SHA256", "CRC32", "SHA1") asks S3 to keep that checksum;
        None uploads with no x-amz-checksum at all (and boto3's default CRC32 off)."""
        client = self.client() if checksum else self.plain_client()
        for rel, data in files.items():
            extra = {"ChecksumAlgorithm": checksum} if checksum else {}
            client.put_object(Bucket=bucket, Key=f"{prefix}{rel}", Body=data, **extra)

    def plain_client(self) -> Any:
        """A client that sends no checksum unless told: objects keep only an ETag."""
        from botocore.config import Config

        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION,
        ).client("s3", endpoint_url=self.endpoint_url,
                 config=Config(request_checksum_calculation="when_required"))

    def put_multipart(self, bucket: str, key: str, parts: list[bytes],
                      checksum: str | None = None, checksum_type: str | None = None) -> None:
        """A multipart upload (every part but the last must be >= 5 MiB)."""
        client = self.client() if checksum else self.plain_client()
        create: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if checksum:
            create["ChecksumAlgorithm"] = checksum
        if checksum_type:
            create["ChecksumType"] = checksum_type
        upload_id = client.create_multipart_upload(**create)["UploadId"]
        done = []
        for number, body in enumerate(parts, start=1):
            extra = {"ChecksumAlgorithm": checksum} if checksum else {}
            answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                        PartNumber=number, Body=body, **extra)
            part = {"ETag": answer["ETag"], "PartNumber": number}
            if checksum:
                part[f"Checksum{checksum}"] = answer[f"Checksum{checksum}"]
            done.append(part)
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": done})

    # -- what is stored, behind the API ----------------------------------------------
    @staticmethod
    def stored(bucket: str, key: str) -> Any:
        """moto's own record of an object (the server runs in this process)."""
        from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
        from moto.s3.models import s3_backends

        return s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[bucket].keys[key]

    def decay(self, bucket: str, key: str, offset: int) -> None:
        """Flip one stored byte of an object at rest, as bit rot on the storage
        would: ETag, stored checksums, LastModified and size stay as they were."""
        buffer = self.stored(bucket, key)._value_buffer
        buffer.seek(offset)
        byte = buffer.read(1)
        buffer.seek(offset)
        buffer.write(bytes([byte[0] ^ 0x01]))

    def same_last_modified(self, bucket: str, key: str, like_bucket: str) -> None:
        """Give an object the LastModified of the same key in ``like_bucket`` (a
        replica that kept its metadata)."""
        self.stored(bucket, key).last_modified = self.stored(like_bucket, key).last_modified

    # -- authentication --------------------------------------------------------------
    def create_access_key(self) -> tuple[str, str]:
        """An IAM user allowed to read S3 and its key, for when auth is enforced."""
        iam = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION,
        ).client("iam", endpoint_url=self.endpoint_url)
        user = f"auditor-{next(_bucket_numbers)}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="read-all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_auth(self, enabled: bool) -> None:
        """Make moto check signatures against its IAM users (off by default).

        The switch is process-wide in moto, so callers turn it off again."""
        count = "0" if enabled else "inf"
        answer = requests.post(f"{self.endpoint_url}/moto-api/reset-auth", data=count,
                               timeout=10)
        answer.raise_for_status()


# -- fixtures ---------------------------------------------------------------------------

def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Fake credentials in the environment; the developer's AWS setup hidden."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                 "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CA_BUNDLE",
                 "AWS_RETRY_MODE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Two attempts keep fault tests short; retrying at all is still exercised.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    fake_aws_environment(monkeypatch, tmp_path_factory.mktemp("aws"))


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """One moto server for the session; use ``new_bucket()`` for isolation."""
    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture
def moto_s3_private() -> Iterator[MotoS3]:
    """A moto server of the test's own, for tests that stop it or enforce auth."""
    server = MotoS3()
    try:
        yield server
    finally:
        server.stop()
        # The auth switch is process-wide: never leave it on for the next test.
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")


@pytest.fixture
def s3_fault_proxy(moto_s3: MotoS3) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream_port=moto_s3.port)
    proxy.start()
    yield proxy
    proxy.stop()


__all__ = ["Fault", "FaultProxy", "MotoS3", "aws_env", "crc32_b64", "fake_aws_environment",
           "moto_s3", "moto_s3_private", "s3_fault_proxy", "sha256_b64"]
