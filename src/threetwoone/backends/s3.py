"""S3 and S3-compatible object storage (``kind: s3``), read-only, through boto3.

Why it looks the way it does:

* S3 has no directories.  A *copy root* is the key prefix ``prefix/path/``; it
  exists when at least one object lies below it.  Keys ending in ``/`` are the
  folder markers that consoles create and are skipped.
* Nobody downloads terabytes each night to audit them, so content is taken from
  checksums S3 already keeps whenever that is sound: ``x-amz-checksum-*`` (asked
  for with ``HeadObject(ChecksumMode=ENABLED)``) and the ETag, which is the MD5
  of the bytes only for an object uploaded in one part and not encrypted with
  SSE-KMS or SSE-C.
* A multipart object's checksum is, unless the server says ``FULL_OBJECT``, a
  checksum of the part checksums (``COMPOSITE``): it is not the checksum of the
  bytes and is never compared with one.  Some servers (moto, older S3-compatible
  stores) send a composite value without ``-N`` suffix and without a checksum
  type, so the rule is: on a multipart object trust only an explicit
  ``FULL_OBJECT``; otherwise download.
* Credentials come only from the standard AWS chain (environment, shared files,
  ``profile``, SSO, instance roles); the inventory never holds secrets.
* Retries of 5xx, throttling and connection resets are botocore's "standard"
  mode (attempt count from ``AWS_MAX_ATTEMPTS`` / ``max_attempts`` in the AWS
  config, 3 by default).  A download cut off mid-body resumes with a ``Range``
  request pinned to the listed ETag.
* The audit never writes: only ListObjectsV2, HeadObject and GetObject are used.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import errno
import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, BinaryIO, ClassVar
from urllib.parse import urlsplit

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from .. import __version__
from ..checksums import BUFFER_SIZE, FACTORIES, new_hashers
from ..inventory import Location
from ..urls import (
    S3_CREDENTIALS,
    default_port,
    normal_path,
    normal_url,
    redact,
    scrub,
    url_problem,
)
from .addresses import host_aliases
from .errors import CopyFailed, LocationUnreachable
from .interface import Backend, HashRequest, HashResult
from .listed import Entry, EntryKind, FolderListing, RootInfo, WalkProblem
from .neterrors import describe
from .streams import buffered

#: Seconds for connecting and for each read when the inventory sets no ``timeout``.
DEFAULT_TIMEOUT = 30.0

#: Connections kept per location; ``-j`` above this opens (and drops) extra ones.
MAX_POOL_CONNECTIONS = 32

#: How often a download cut off in the middle of the body is resumed, and the
#: first pause before resuming (doubled each time).
STREAM_RESUMES = 3
RESUME_BACKOFF = 0.5

#: ``x-amz-checksum-*`` response fields -> (our algorithm name, digest length in bytes).
CHECKSUM_FIELDS: dict[str, tuple[str, int]] = {
    "ChecksumSHA256": ("sha256", 32),
    "ChecksumSHA1": ("sha1", 20),
    "ChecksumCRC32": ("crc32", 4),
    "ChecksumCRC32C": ("crc32c", 4),
    "ChecksumCRC64NVME": ("crc64nvme", 8),
}

#: Algorithms S3 can report without reading data, most useful first.  Only those
#: :mod:`threetwoone.checksums` can compute are offered: a digest the auditor
#: cannot put into the reference is useless.
SERVER_ALGORITHMS = ("md5", "crc32", "sha256", "crc32c", "crc64nvme")

#: Error codes that mean "these credentials are not accepted here".
AUTH_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AuthorizationHeaderMalformed",
    "InvalidSecurity", "AccountProblem", "AllAccessDisabled", "RequestTimeTooSkewed",
    "InvalidClientTokenId", "UnrecognizedClientException", "InvalidRequest",
    "401", "403",
})

_CREDENTIAL_ERRORS = (
    bexc.NoCredentialsError, bexc.PartialCredentialsError, bexc.ProfileNotFound,
    bexc.CredentialRetrievalError, bexc.TokenRetrievalError, bexc.InvalidConfigError,
    bexc.UnknownCredentialError, bexc.SSOError, bexc.ConfigNotFound,
)

#: Failures of the connection itself (after botocore's own retries).
_CONNECTION_ERRORS = (bexc.ConnectionError, bexc.HTTPClientError)

#: Failures while streaming a response body: worth resuming.
_STREAM_ERRORS = (
    bexc.ResponseStreamingError, bexc.IncompleteReadError, bexc.ReadTimeoutError,
    bexc.ConnectionClosedError, ConnectionError, TimeoutError,
)

class _ShortBody(Exception):
    """A download ended, without an error, before the listed size."""


#: Hosts of Amazon's own S3 endpoints; group 1 is the partition suffix (".cn").
_AWS_HOST = re.compile(r"(?:^|\.)amazonaws\.com(\.cn)?$", re.IGNORECASE)

_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_MULTIPART_ETAG = re.compile(r'^"?[0-9a-fA-F]+-\d+"?$')


def s3_checksum_to_hex(value: str, length: int) -> str | None:
    """Decode a base64 ``x-amz-checksum-*`` value to lowercase hex.

    None for anything that is not exactly ``length`` bytes, including composite
    values written ``base64-N``: a value we cannot read is never compared."""
    if not isinstance(value, str) or "-" in value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == length else None


def is_multipart_etag(etag: str | None) -> bool:
    return bool(etag) and _MULTIPART_ETAG.match(etag or "") is not None


def server_digests(head: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """The whole-object digests a HeadObject response vouches for.

    Returns ``{algorithm: (hex, where it came from)}``.  Left out, so that the
    caller downloads instead: composite checksums; any checksum of a multipart
    object unless the server says ``FULL_OBJECT``; the ETag of a multipart
    object or of one encrypted with SSE-KMS or SSE-C (those ETags are not the
    MD5 of the bytes)."""
    out: dict[str, tuple[str, str]] = {}
    etag = head.get("ETag")
    etag = etag if isinstance(etag, str) else None
    multipart = is_multipart_etag(etag) or int(head.get("PartsCount") or 0) > 1
    ctype = str(head.get("ChecksumType") or "").upper()
    if ctype != "COMPOSITE" and (ctype == "FULL_OBJECT" or not multipart):
        for field_name, (algorithm, length) in CHECKSUM_FIELDS.items():
            value = head.get(field_name)
            if value is None:
                continue
            hexdigest = s3_checksum_to_hex(value, length)
            if hexdigest is not None:
                out[algorithm] = (hexdigest, f"x-amz-checksum-{algorithm}")
    encrypted = (str(head.get("ServerSideEncryption") or "").startswith("aws:kms")
                 or bool(head.get("SSECustomerAlgorithm")))
    match = _MD5_ETAG.match(etag or "")
    if match and not multipart and not encrypted:
        out["md5"] = (match.group(1).lower(), "ETag md5")
    return out


def _join_key(*parts: str) -> str:
    """Join key fragments with single slashes; empty fragments vanish."""
    segments = [s for part in parts for s in part.split("/") if s and s != "."]
    return "/".join(segments)


def _mtime_ns(value: Any) -> int | None:
    if not isinstance(value, datetime):
        return None
    seconds = calendar.timegm(value.utctimetuple())
    return seconds * 1_000_000_000 + value.microsecond * 1000


def _last_line(exc: BaseException) -> str:
    """The last line of a library's message, URLs in it without credentials."""
    text = scrub(str(exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__


#: Credential parts botocore sends in headers or signs, and the variables that
#: hold them when they come from the environment.
_CREDENTIAL_PARTS = (("access_key", "access key id", "AWS_ACCESS_KEY_ID"),
                     ("secret_key", "secret access key", "AWS_SECRET_ACCESS_KEY"),
                     ("token", "session token", "AWS_SESSION_TOKEN"))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def credentials_problem(session: Any) -> str | None:
    """Why the session's credentials cannot be sent, naming where they come from
    and never their value; None when they can (or are missing: the first
    request reports that).  Checked before any request: botocore puts them in
    headers, and the HTTP library quotes a whole bad header value (a session
    token) in its error."""
    try:
        credentials = session.get_credentials()
    except _CREDENTIAL_ERRORS:
        return None
    if credentials is None:
        return None
    for attribute, what, variable in _CREDENTIAL_PARTS:
        value = getattr(credentials, attribute, None)
        if isinstance(value, str) and _CONTROL.search(value):
            source = (f"environment variable {variable}" if credentials.method == "env"
                      else f"the {what} from {credentials.method}")
            return (f"{source} holds a line break or another control character, which "
                    f"an AWS {what} cannot contain (the value is not shown)")
    return None


def _error_code(exc: bexc.ClientError) -> tuple[str, int]:
    response = getattr(exc, "response", {}) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


class S3Backend(Backend):
    """An S3 bucket (AWS or any S3-compatible endpoint), optionally below a prefix."""

    kind: ClassVar[str] = "s3"
    #: Downloads report their bytes as they come (objects may be large).
    reports_bytes: ClassVar[bool] = True

    def __init__(self, name: str, location: Location) -> None:
        super().__init__(name, location)
        settings = location.settings
        self.bucket = str(settings["bucket"])
        self.endpoint_url: str | None = settings.get("endpoint_url")
        # Validation refuses such an endpoint already; a backend made otherwise
        # must not send (or show) what it holds either.
        problem = url_problem(self.endpoint_url, credentials=S3_CREDENTIALS,
                              tokens=S3_CREDENTIALS) if self.endpoint_url else None
        self._url_problem = f"endpoint_url {problem}" if problem else None
        self.prefix = _join_key(str(settings.get("prefix") or ""))
        self.region: str | None = settings.get("region")
        self.profile: str | None = settings.get("profile")
        self.timeout = float(settings.get("timeout") or DEFAULT_TIMEOUT)
        self._client: Any = None
        self._lock = threading.Lock()
        self._owner: str | None = None
        self._owner_known = False

    # -- life cycle --------------------------------------------------------
    @property
    def where(self) -> str:
        """How messages name this location: ``s3://bucket/prefix at endpoint``."""
        url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{url} at {redact(self.endpoint_url)}" if self.endpoint_url else url

    def _make_client(self) -> Any:
        try:
            session = boto3.session.Session(profile_name=self.profile)
        except _CREDENTIAL_ERRORS as exc:
            raise LocationUnreachable(f"{self.where}: {_last_line(exc)}") from None
        problem = credentials_problem(session)
        if problem:
            raise LocationUnreachable(f"{self.where}: {problem}")
        region = self.region or session.region_name or "us-east-1"
        config = Config(
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            # Attempt count stays the user's (AWS_MAX_ATTEMPTS, ~/.aws/config).
            retries={"mode": "standard"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
            # Self-hosted stores seldom have wildcard DNS for virtual hosts.
            s3={"addressing_style": "path"} if self.endpoint_url else None,
            # We hash what we download ourselves; botocore must not reject a
            # body whose stored checksum is wrong (that is a finding, not a crash).
            response_checksum_validation="when_required",
            request_checksum_calculation="when_required",
            user_agent_extra=f"threetwoone/{__version__}",
        )
        try:
            return session.client("s3", endpoint_url=self.endpoint_url, region_name=region,
                                  config=config)
        except (*_CREDENTIAL_ERRORS, ValueError) as exc:
            raise LocationUnreachable(f"{self.where}: {_last_line(exc)}") from None

    @property
    def client(self) -> Any:
        if self._client is None:
            self.connect()
        return self._client

    @property
    def _endpoint(self) -> str:
        if self._client is not None:
            return redact(str(self._client.meta.endpoint_url))
        return redact(self.endpoint_url) if self.endpoint_url else "S3"

    def connect(self) -> None:
        if self._url_problem:
            raise LocationUnreachable(f"{self.where}: {self._url_problem}")
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
        try:
            self._client.list_objects_v2(Bucket=self.bucket, Prefix=self._dir(self.prefix),
                                         MaxKeys=1)
        except Exception as exc:
            raise self._unreachable(exc) from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _unreachable(self, exc: Exception) -> Exception:
        """Translate a failure while reaching the location."""
        if isinstance(exc, LocationUnreachable | CopyFailed):
            return exc
        if isinstance(exc, _CREDENTIAL_ERRORS):
            return LocationUnreachable(f"{self.where}: no usable AWS credentials: "
                                       f"{_last_line(exc)}")
        if isinstance(exc, _CONNECTION_ERRORS):
            return LocationUnreachable(
                f"{self.where}: {describe(exc, self._endpoint, self.timeout).message}")
        if isinstance(exc, bexc.ClientError):
            code, status = _error_code(exc)
            if code == "NoSuchBucket" or (status == 404 and code in ("404", "NotFound")):
                return LocationUnreachable(f"{self.where}: bucket {self.bucket!r} does not exist")
            if code in AUTH_CODES or status in (401, 403):
                return LocationUnreachable(
                    f"{self.where}: access denied ({code or status}); check the AWS "
                    f"credentials{' of profile ' + repr(self.profile) if self.profile else ''}"
                    f" and the bucket policy")
            return LocationUnreachable(f"{self.where}: server answered {code or status}: "
                                       f"{_last_line(exc)}")
        if isinstance(exc, bexc.BotoCoreError):
            return LocationUnreachable(f"{self.where}: {_last_line(exc)}")
        return exc

    def _failed(self, exc: Exception, what: str) -> Exception:
        """Translate a failure after connect that stops the whole copy."""
        if isinstance(exc, LocationUnreachable | CopyFailed):
            return exc
        if isinstance(exc, _CONNECTION_ERRORS):
            return CopyFailed(f"{self.where}: {what}: "
                              f"{describe(exc, self._endpoint, self.timeout).message}")
        if isinstance(exc, bexc.ClientError | bexc.BotoCoreError):
            return CopyFailed(f"{self.where}: {what}: {_last_line(exc)}")
        return exc

    # -- what the backend can do ------------------------------------------
    def _server_digests(self) -> tuple[str, ...]:
        return tuple(a for a in SERVER_ALGORITHMS if a in FACTORIES)

    # -- keys ----------------------------------------------------------------
    @staticmethod
    def _dir(key: str) -> str:
        return f"{key}/" if key else ""

    def root_prefix(self, path: str) -> str:
        """The key prefix below which the copy ``path`` lives (ends in ``/``
        unless it is the whole bucket)."""
        return self._dir(_join_key(self.prefix, path))

    # -- reading -----------------------------------------------------------
    def stat_root(self, path: str) -> RootInfo | None:
        prefix = self.root_prefix(path)
        try:
            answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except Exception as exc:
            raise self._unreachable(exc) from None
        if not answer.get("KeyCount") and not answer.get("Contents"):
            return None
        names = [f"s3:{service}/{self.bucket}/{prefix}" for service in self._services()]
        return RootInfo(identity=names[0], aliases=tuple(names[1:]))

    def _services(self) -> tuple[str, ...]:
        """Names of the S3 service the bucket lives in, for the same-storage check.

        Bucket names are unique within a service, so the service and the bucket
        name identify a bucket: every AWS endpoint (global, regional, dual-stack)
        reaches one service per partition; any other endpoint is its host,
        normalised (each address it resolves to, the default port) and path.
        A bucket's owner id is not used: self-hosted stores (MinIO) give the same
        one everywhere, and two sites' buckets of one name would merge."""
        if not self.endpoint_url:
            return ("aws",)
        parts = urlsplit(self.endpoint_url.strip())
        host = parts.hostname or ""
        aws = _AWS_HOST.search(host)
        if aws:
            return ("aws" + (aws.group(1) or "").replace(".", "-"),)
        path = normal_path(parts.path, decode=True).rstrip("/")
        return tuple(alias + path for alias in host_aliases(host, default_port(parts) or 0))

    def storage_identity(self, path: str, root: RootInfo) -> dict[str, str]:
        """Endpoint (normalised; AWS when none is set), bucket, key prefix, and the
        bucket's owner where the server tells it (a bucket of the same name made
        again by another account is other storage)."""
        endpoint = normal_url(self.endpoint_url) if self.endpoint_url else "aws"
        facts = {"kind": self.kind, "endpoint": endpoint, "bucket": self.bucket,
                 "prefix": self.root_prefix(path)}
        owner = self.bucket_owner()
        if owner:
            facts["owner"] = owner
        return facts

    def bucket_owner(self) -> str | None:
        """The bucket owner's canonical id (``GetBucketAcl``), asked once per run.

        None when the credentials may not ask (an auditor's policy seldom grants
        ``s3:GetBucketAcl``) or the server does not say: always the same answer
        for the same setup, so the storage identity does not flicker.  A server
        failing after botocore's retries stops the copy instead of quietly
        leaving the owner out (which would read as other storage)."""
        with self._lock:
            if self._owner_known:
                return self._owner
        try:
            answer = self.client.get_bucket_acl(Bucket=self.bucket)
            owner = answer.get("Owner", {}).get("ID")
            found = str(owner) if owner else None
        except bexc.ClientError as exc:
            code, status = _error_code(exc)
            if status >= 500 or code in ("SlowDown", "Throttling", "ThrottlingException"):
                raise self._failed(exc, "asking for the bucket's owner") from None
            found = None
        except Exception as exc:
            raise self._failed(exc, "asking for the bucket's owner") from None
        with self._lock:
            self._owner, self._owner_known = found, True
        return found

    def list_folder(self, path: str) -> FolderListing | None:
        """Keys directly below the prefix, and the next ``/``-delimited prefixes
        as folders (S3 has no folders; a prefix with no key below it is none)."""
        prefix = self.root_prefix(path)
        folders: list[str] = []
        entries: list[Entry] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", ()):
                    folders.append(str(common["Prefix"])[len(prefix):].removesuffix("/"))
                for obj in page.get("Contents", ()):
                    item = self._entry(prefix, obj)
                    if isinstance(item, Entry):
                        entries.append(item)
        except Exception as exc:
            raise self._failed(exc, "listing failed") from None
        if not folders and not entries:
            return None
        return FolderListing(tuple(sorted(folders)), tuple(sorted(entries)))

    def walk(self, path: str) -> Iterator[Entry | WalkProblem]:
        """Entries as the listing pages arrive, in the order the server lists
        them (S3: the keys' UTF-8 byte order; S3 Express and some compatible
        stores: none in particular).  Nothing is held beyond one page: the
        auditor files entries by path as they come and needs no order."""
        prefix = self.root_prefix(path)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", ()):
                    item = self._entry(prefix, obj)
                    if item is not None:
                        yield item
        except (LocationUnreachable, CopyFailed):
            raise
        except Exception as exc:
            raise self._failed(exc, "listing failed") from None

    @staticmethod
    def _entry(prefix: str, obj: Mapping[str, Any]) -> Entry | WalkProblem | None:
        key = str(obj["Key"])
        rel = key[len(prefix):]
        if not rel or rel.endswith("/"):
            return None  # the root's own folder marker, or a folder marker below it
        if any(part in ("", ".", "..") for part in rel.split("/")):
            return WalkProblem(path=rel, detail=f"object key {key!r} is not a usable file "
                                                "path (empty, '.' or '..' segment); not audited")
        etag = obj.get("ETag")
        return Entry(path=rel, kind=EntryKind.FILE, size=int(obj.get("Size") or 0),
                     mtime_ns=_mtime_ns(obj.get("LastModified")),
                     ident=str(etag) if etag else None)

    def open_read(self, path: str, relpath: str) -> BinaryIO:
        key = self.root_prefix(path) + relpath
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except bexc.ClientError as exc:
            code, status = _error_code(exc)
            if code in ("NoSuchKey", "404") or status == 404:
                raise FileNotFoundError(errno.ENOENT, "no such object", key) from None
            if code in AUTH_CODES or status == 403:
                raise PermissionError(errno.EACCES, f"access denied ({code})", key) from None
            raise OSError(errno.EIO, _last_line(exc), key) from None
        except Exception as exc:
            raise self._failed(exc, f"reading {relpath!r}") from None
        body = answer["Body"]
        length = answer.get("ContentLength")
        if not isinstance(length, int):
            # No Content-Length: the end of the body cannot be told from a cut.
            length = self._object_size(key)
        return buffered(body.read, body.close, length=length,
                        errors=(*_STREAM_ERRORS, bexc.BotoCoreError), describe=_last_line)

    def _object_size(self, key: str) -> int | None:
        try:
            size = self.client.head_object(Bucket=self.bucket, Key=key).get("ContentLength")
        except (bexc.ClientError, bexc.BotoCoreError):
            return None
        return size if isinstance(size, int) else None

    def _hasher(self, path: str, request: HashRequest) -> Callable[[Entry], HashResult]:
        prefix = self.root_prefix(path)
        computable = [a for a in dict.fromkeys(request.algorithms) if a in FACTORIES]
        return functools.partial(self._hash_one, self.client, prefix, computable, request)

    def _hash_one(self, client: Any, prefix: str, computable: Sequence[str],
                  request: HashRequest, entry: Entry) -> HashResult:
        key = prefix + entry.path
        if not request.full:
            try:
                head = client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            except bexc.ClientError as exc:
                return self._file_error(entry, exc)
            except Exception as exc:
                raise self._failed(exc, f"reading {entry.path!r}") from None
            if entry.ident and head.get("ETag") and head["ETag"] != entry.ident:
                return HashResult(entry.path, {}, entry.size,
                                  error="object replaced during the audit (ETag changed)")
            found = server_digests(head)
            usable = {a: found[a] for a in request.algorithms if a in found}
            if usable:
                return HashResult(
                    entry.path, {a: hexdigest for a, (hexdigest, _) in usable.items()},
                    int(head.get("ContentLength", entry.size)), method="digest",
                    via=", ".join(source for _, source in usable.values()))
        if not computable:
            return HashResult(entry.path, {}, entry.size,
                              error="no checksum algorithm that can be computed was requested")
        return self._download(client, key, entry, computable, request)

    def _download(self, client: Any, key: str, entry: Entry, algorithms: Sequence[str],
                  request: HashRequest) -> HashResult:
        hashers = new_hashers(algorithms)
        total = 0
        resumes = 0
        while True:
            asked: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
            if entry.ident:
                asked["IfMatch"] = entry.ident
            if total:
                asked["Range"] = f"bytes={total}-"
            try:
                answer = client.get_object(**asked)
            except bexc.ClientError as exc:
                return self._file_error(entry, exc)
            except Exception as exc:
                raise self._failed(exc, f"reading {entry.path!r}") from None
            body = answer["Body"]
            try:
                for chunk in body.iter_chunks(BUFFER_SIZE * 8):
                    if total + len(chunk) > entry.size:
                        return HashResult(entry.path, {}, total, error=(
                            f"the server sent more than the {entry.size} bytes the listing "
                            "said: the object changed during the audit or the transfer "
                            "is broken"))
                    for hasher in hashers.values():
                        hasher.update(chunk)
                    total += len(chunk)
                    request.read(len(chunk))
                if total < entry.size:
                    # Ended without an error: a body without Content-Length, cut
                    # short, looks like a whole one.  Resume it like a broken one.
                    raise _ShortBody(f"the body ended after {total} of {entry.size} bytes")
                break
            except (*_STREAM_ERRORS, _ShortBody) as exc:
                resumes += 1
                if resumes > STREAM_RESUMES:
                    return HashResult(entry.path, {}, total, error=(
                        f"download broke off {resumes} times, last after {total} bytes: "
                        f"{_last_line(exc)}"))
                time.sleep(min(8.0, RESUME_BACKOFF * 2 ** (resumes - 1)))
            finally:
                body.close()
        return HashResult(entry.path, {a: h.hexdigest() for a, h in hashers.items()}, total,
                          method="full", via="download")

    def _file_error(self, entry: Entry, exc: bexc.ClientError) -> HashResult:
        code, status = _error_code(exc)
        if code in ("NoSuchKey", "404") or status == 404:
            detail = "object disappeared during the audit"
        elif code in ("InvalidRange", "416") or status == 416:
            detail = ("object shorter than the listing said (changed during the audit, "
                      "or the server reports a wrong size)")
        elif code in ("PreconditionFailed", "412") or status == 412:
            detail = "object replaced during the audit (ETag changed)"
        elif code == "InvalidObjectState":
            detail = "object is archived (Glacier/Deep Archive): restore it first"
        elif code in AUTH_CODES or status in (401, 403):
            detail = f"access denied ({code or status})"
        elif status == 400 and code in ("400", "BadRequest", "InvalidArgument"):
            detail = f"request refused ({code}); encrypted with a customer key (SSE-C)?"
        else:
            detail = f"{code or status}: {_last_line(exc)}"
        return HashResult(entry.path, {}, entry.size, error=detail)
