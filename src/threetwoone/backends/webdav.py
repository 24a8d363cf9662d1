"""WebDAV locations: dCache ("Swestore"), XRootD's HTTP server, any RFC 4918 server.

Auditing terabytes on national storage by downloading them every night is not
an option, so a file is verified, where the server allows, through the checksum
the server already keeps (RFC 3230 ``Want-Digest`` on ``HEAD``, or dCache's
``Checksums`` PROPFIND property): ``verification: digest``.  Without a usable
server digest, or when a full check is forced (``force_full`` by the auditor,
``force_download: true`` on the location), the bytes are streamed with ``GET``
and hashed here: ``full``.  A forced download also asks for the server digest
and says in the result when the server's checksum disagrees with the bytes, so
a server that lies is told apart from real corruption.

Listing uses ``PROPFIND`` with ``Depth: 1`` folder by folder (dCache and others
refuse ``infinity``).  Reads follow redirects (dCache answers with a 307 to a
pool); ``Authorization`` is dropped when a redirect leaves the host, as
``requests`` does, while a client certificate is still presented.

Errors: DNS failures, TLS failures, refused or timed-out connections and
401/403 at connect are :class:`LocationUnreachable` with one line; 5xx and
resets are retried with backoff (``RETRY_DELAYS``), then a per-file error or
:class:`CopyFailed`.  No secret (token, password, query string) ever appears in
a message.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3

from ..checksums import FACTORIES, hash_stream
from ..urls import (
    WEBDAV_CREDENTIALS,
    WEBDAV_TOKENS,
    default_port,
    netloc,
    normal_path,
    normal_url,
    redact,
    url_problem,
)
from .addresses import host_aliases
from .dav_listing import (
    PROPFIND_BODY,
    STAT_BODY,
    DavResource,
    ListingError,
    parse_multistatus,
)
from .http_digest import OURS_TO_RFC, PREFERENCE, parse_digest_header, usable, want_digest_header
from .interface import (
    Backend,
    CopyFailed,
    Entry,
    EntryKind,
    HashResult,
    LocationUnreachable,
    NotAFolder,
    ProgressCallback,
    RootInfo,
    WalkProblem,
)
from .parallel import map_bounded
from .streams import buffered

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
#: Waits between attempts after a 5xx, a reset or a lost connection (seconds).
RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: A Retry-After longer than this is not honoured (we wait this long at most).
MAX_RETRY_AFTER = 30.0
#: Largest GET read; requests/urllib3 read from the socket in pieces anyway.
CHUNK = 1024 * 1024
#: How many folders the digest probe may list to find one file.
PROBE_FOLDERS = 16
MAX_DEPTH = 512
#: ``Server`` header prefixes (lowercase) of servers that put names in PROPFIND
#: hrefs as they are, without percent-encoding (XRootD's XrdHttp, seen in 5.5).
LITERAL_HREF_SERVERS = ("xrootd/",)
#: How a folder's own id (RFC 5842 resource-id, oc:id) is named among a root's keys.
RESOURCE_KEY = "webdav-resource:"


#: What a bearer token may hold: visible ASCII (RFC 6750's b64token and more).
_BEARER_TOKEN = re.compile(r"[\x21-\x7e]+")
#: Control characters (line breaks among them), never part of a password we send.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _TransportError(Exception):
    """A request could not be completed (after retries, where retrying made sense).
    ``fatal`` marks failures that retrying cannot fix (DNS, TLS)."""

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class _WrongLength(Exception):
    """A GET body ended before (or ran past) the size the listing gave, without
    the connection reporting an error: a body delimited by closing the
    connection, cut short, looks exactly like a complete one.  Retried; in the
    end the file is unreadable, never corrupt."""


class _StatusError(Exception):
    """The server kept answering with a 5xx (or 429) after every retry."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status


class _BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer`` (OIDC tokens, dCache macaroons)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:  # never show the token
        return "<bearer token>"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes/contexts and the exceptions in its args."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for nxt in (item.__cause__, item.__context__, getattr(item, "reason", None),
                    *item.args):
            if isinstance(nxt, BaseException):
                stack.append(nxt)


def describe_transport_error(exc: BaseException, where: str, timeout: float
                             ) -> tuple[str, bool]:
    """One clear line for a failed request, and whether retrying is pointless."""
    parts = list(_chain(exc))
    for item in parts:
        if isinstance(item, ssl.SSLCertVerificationError):
            reason = str(item.verify_message or item.reason or "verification failed")
            return (f"TLS certificate of {where} not accepted: {reason} "
                    "(set ca_bundle, or verify_tls: false)"), True
    for item in parts:
        if isinstance(item, (ssl.SSLError, requests.exceptions.SSLError)):
            why = getattr(item, "reason", None)
            return f"TLS handshake with {where} failed" + (
                f": {why}" if isinstance(why, str) else ""), True
    for item in parts:
        if isinstance(item, socket.gaierror) or type(item).__name__ == "NameResolutionError":
            return f"cannot resolve host name of {where}", True
    for item in parts:
        if isinstance(item, requests.exceptions.ConnectTimeout) or \
                type(item).__name__ == "ConnectTimeoutError":
            return f"connecting to {where} timed out after {timeout:g} s", False
    for item in parts:
        if isinstance(item, (requests.exceptions.ReadTimeout,
                             urllib3.exceptions.ReadTimeoutError, TimeoutError)):
            return f"{where} did not answer within {timeout:g} s", False
    for item in parts:
        if isinstance(item, ConnectionRefusedError):
            return f"connection refused by {where}", False
        if isinstance(item, ConnectionResetError):
            return f"connection reset by {where}", False
        if isinstance(item, urllib3.exceptions.IncompleteRead) or \
                type(item).__name__ == "IncompleteRead":
            return f"{where} closed the connection before the end of the data", False
        if isinstance(item, BrokenPipeError):
            return f"connection to {where} broken", False
    for item in parts:
        if isinstance(item, urllib3.exceptions.ProtocolError):
            return f"connection to {where} lost", False
    return f"cannot talk to {where}: {type(exc).__name__}", False


_TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,
    OSError,
)


class _Session(requests.Session):
    """A session whose TLS settings win over ``REQUESTS_CA_BUNDLE`` and friends:
    requests lets those environment variables override ``Session.verify``, which
    would silently ignore the location's ``ca_bundle``."""

    def __init__(self, verify: bool | str) -> None:
        super().__init__()
        self._verify = verify

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        if self._verify is not True:
            kwargs.setdefault("verify", self._verify)
        return super().request(method, url, *args, **kwargs)


class WebDAVBackend(Backend):
    kind = "webdav"

    #: Class-level so tests can shorten the waits; a location never changes it.
    retry_delays: tuple[float, ...] = RETRY_DELAYS

    def __init__(self, name: str, location: Any) -> None:
        super().__init__(name, location)
        settings: Mapping[str, Any] = location.settings
        url = str(settings.get("url", "")).strip()
        parts = urlsplit(url)
        # Validation refuses such a url already; a backend made otherwise must not
        # send (or show) what it holds either.
        problem = url_problem(url, credentials=WEBDAV_CREDENTIALS, tokens=WEBDAV_TOKENS)
        self._url_problem = f"the url {problem}" if problem else None
        self._origin = f"{parts.scheme}://{netloc(parts)}"
        #: The location's base path on the server, decoded, without trailing "/",
        #: "." or empty segments: ``/data/./`` and ``/data`` are one folder.
        self._base = normal_path(parts.path, decode=True).rstrip("/")
        #: The server as the same-storage check names it (see ``stat_root``).
        self._host = (parts.hostname or "", default_port(parts) or 0)
        self._where = redact(url)
        self._timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))
        self._force_download = bool(settings.get("force_download", False))
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._auth: requests.auth.AuthBase | None = None
        self._server_algorithms: tuple[str, ...] | None = None
        self._literal_hrefs = False
        self._connected = False

    # -- sessions and requests ------------------------------------------------
    def _settings(self) -> Mapping[str, Any]:
        settings: Mapping[str, Any] = self.location.settings
        return settings

    def _make_auth(self) -> requests.auth.AuthBase | None:
        auth = self._settings().get("auth") or {"type": "none"}
        kind = auth.get("type", "none")
        if kind == "bearer":
            var = str(auth.get("token_env", ""))
            token = os.environ.get(var, "").strip()
            if not token:
                raise LocationUnreachable(
                    f"{self._where}: environment variable {var} (auth.token_env) "
                    "is not set or empty")
            if not _BEARER_TOKEN.fullmatch(token):
                # Never sent: a line break would end the header (and the HTTP
                # library would quote the whole value in its error).
                raise LocationUnreachable(
                    f"{self._where}: environment variable {var} (auth.token_env) holds "
                    "a line break, space or other character a bearer token cannot "
                    "contain (the value is not shown)")
            return _BearerAuth(token)
        if kind == "basic":
            var = str(auth.get("password_env", ""))
            password = os.environ.get(var)
            if not password:
                raise LocationUnreachable(
                    f"{self._where}: environment variable {var} (auth.password_env) "
                    "is not set or empty")
            if _CONTROL.search(password):
                raise LocationUnreachable(
                    f"{self._where}: environment variable {var} (auth.password_env) holds "
                    "a line break or another control character (the value is not shown)")
            # UTF-8 (RFC 7617's charset), not requests' latin-1, which fails on
            # other characters.
            return requests.auth.HTTPBasicAuth(
                str(auth.get("username", "")).encode(),
                password.encode("utf-8", "surrogateescape"))
        if kind == "cert" and not self._settings().get("cert"):
            raise LocationUnreachable(
                f"{self._where}: auth type 'cert' needs 'cert' (a certificate or proxy file)")
        return None

    def _new_session(self) -> requests.Session:
        settings = self._settings()
        verify: bool | str = True
        if settings.get("verify_tls") is False:
            verify = False
        elif settings.get("ca_bundle"):
            verify = str(settings["ca_bundle"])
        session = _Session(verify)
        session.verify = verify
        session.auth = self._auth
        # The stored bytes, not a compressed rendering of them.
        session.headers["Accept-Encoding"] = "identity"
        session.headers["User-Agent"] = "threetwoone (backup audit)"
        cert, key = settings.get("cert"), settings.get("key")
        if cert:
            session.cert = (str(cert), str(key)) if key else str(cert)
        with self._sessions_lock:
            self._sessions.append(session)
        return session

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._new_session()
            self._local.session = session
        return session

    def _url(self, server_path: str) -> str:
        return self._origin + quote(server_path, safe="/", errors="surrogateescape")

    def _copy_path(self, path: str, relpath: str = "") -> str:
        """Server path of ``relpath`` in the copy at ``path`` (decoded, normalised:
        the copy paths ``run1``, ``./run1`` and ``run1/`` are one folder)."""
        return normal_path(f"{self._base}/{path}/{relpath}")

    def _call(self, fn: Callable[[requests.Session], T], *, retry_connect: bool = True) -> T:
        """Run ``fn`` (one request, body included) with retries on 5xx, resets and
        lost connections.  ``retry_connect=False`` gives up at once when the
        server cannot be reached or does not answer in time (connect: report,
        do not wait)."""
        delays = self.retry_delays
        attempt = 0
        while True:
            wait_for: float | None = None
            try:
                return fn(self._session())
            except _StatusError as exc:
                if attempt >= len(delays):
                    raise
                wait_for = getattr(exc, "retry_after", None)
                log.debug("%s: %s, retrying", self._where, exc)
            except _WrongLength as exc:
                if attempt >= len(delays):
                    raise
                log.debug("%s: %s, retrying", self._where, exc)
            except _TRANSPORT_ERRORS as exc:
                message, fatal = describe_transport_error(exc, self._where, self._timeout)
                refused = message.startswith(("connection refused", "connecting to")) \
                    or " did not answer within " in message
                if fatal or attempt >= len(delays) or (refused and not retry_connect):
                    raise _TransportError(message, fatal) from None
                log.debug("%s: %s, retrying", self._where, message)
            delay = delays[attempt]
            time.sleep(min(wait_for, MAX_RETRY_AFTER) if wait_for else delay)
            attempt += 1

    @staticmethod
    def _check_retryable(response: requests.Response) -> None:
        if response.status_code in RETRY_STATUS:
            error = _StatusError(response.status_code, response.reason or "")
            after = response.headers.get("Retry-After", "")
            if after.isdigit():
                error.retry_after = float(after)  # type: ignore[attr-defined]
            response.close()
            raise error

    def _propfind(self, server_path: str, depth: int, *, retry_connect: bool = True,
                  body: bytes = PROPFIND_BODY) -> tuple[int, list[DavResource]]:
        """PROPFIND a collection (or file); follows same-server redirects only,
        keeping the method (requests would turn a 302 into a GET)."""
        url = self._url(server_path)
        headers = {"Depth": str(depth), "Content-Type": "application/xml"}

        def send(session: requests.Session) -> tuple[int, bytes, str]:
            target = url
            for _hop in range(6):
                response = session.request(
                    "PROPFIND", target, data=body, allow_redirects=False,
                    headers=headers, timeout=self._timeout)
                if response.status_code in (301, 302, 303, 307, 308) and \
                        response.headers.get("Location"):
                    nxt = requests.compat.urljoin(target, response.headers["Location"])
                    response.close()
                    if redact(nxt).split("/")[2] != redact(target).split("/")[2]:
                        raise _TransportError(
                            f"{self._where}: listing redirected to another server")
                    target = nxt
                    continue
                self._check_retryable(response)
                return (response.status_code, response.content,
                        response.headers.get("Server", ""))
            raise _TransportError(f"{self._where}: too many redirects while listing")

        status, answer, server = self._call(send, retry_connect=retry_connect)
        if status != 207:
            return status, []
        if not self._literal_hrefs and server.lower().startswith(LITERAL_HREF_SERVERS):
            # Known to write hrefs as the names are on disk, also when every name
            # of an answer happens to look percent-encoded ("100%25.txt").
            self._literal_hrefs = True
        try:
            resources, literal = parse_multistatus(answer, self._literal_hrefs)
        except ListingError as exc:
            raise _TransportError(f"{self._where}: {exc}") from None
        if literal and not self._literal_hrefs:
            # This server sends names as they are (XRootD): read every href so.
            self._literal_hrefs = True
            resources, _ = parse_multistatus(answer, True)
        return status, resources

    # -- life cycle ---------------------------------------------------------
    def connect(self) -> None:
        if self._url_problem:
            raise LocationUnreachable(self._url_problem)
        for key in ("ca_bundle", "cert", "key"):
            value = self._settings().get(key)
            if value and not os.path.exists(str(value)):
                raise LocationUnreachable(f"{self._where}: {key} {value} does not exist")
        if self._settings().get("verify_tls") is False:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._auth = self._make_auth()
        try:
            # Nothing listening, or no answer: say so now rather than after
            # the backoff (a restarting server mid-audit is retried, though).
            status, _resources = self._propfind(self._base + "/", 0, retry_connect=False)
        except _TransportError as exc:
            raise LocationUnreachable(str(exc)) from None
        except _StatusError as exc:
            raise LocationUnreachable(f"{self._where} answers {exc}") from None
        if status in (401, 403):
            what = "authentication failed" if status == 401 else "access denied"
            raise LocationUnreachable(
                f"{what} at {self._where} (HTTP {status}); check the location's auth")
        if status == 404:
            raise LocationUnreachable(f"{self._where} does not exist (HTTP 404)")
        if status in (400, 405, 501):
            raise LocationUnreachable(
                f"{self._where} does not answer WebDAV PROPFIND (HTTP {status})")
        if status != 207:
            raise LocationUnreachable(f"{self._where} answers HTTP {status} to PROPFIND")
        self._connected = True

    def close(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    # -- capabilities ------------------------------------------------------
    def digest_algorithms(self) -> tuple[str, ...]:
        """What the server reports, learnt once per run by asking for each
        algorithm on one small file (a server may answer with another
        algorithm than the one asked for, e.g. XRootD with its first one)."""
        if self._force_download:
            return ()
        if self._server_algorithms is None:
            try:
                self._server_algorithms = self._probe_digests()
            except (_TransportError, _StatusError, LocationUnreachable, CopyFailed) as exc:
                log.debug("%s: digest probe failed: %s", self._where, exc)
                return ()
        return self._server_algorithms

    def _probe_digests(self) -> tuple[str, ...]:
        folders = [self._base]
        sample: DavResource | None = None
        for _ in range(PROBE_FOLDERS):
            if not folders:
                break
            folder = folders.pop(0)
            status, resources = self._propfind(folder + "/", 1)
            if status != 207:
                continue
            children = self._children(folder, resources)
            files = [r for _n, r in children if not r.is_collection]
            if files:
                sample = min(files, key=lambda r: r.size or 0)
                break
            folders.extend(r.path.rstrip("/") for _n, r in children if r.is_collection)
        if sample is None:
            return ()
        if sample.digests:
            return tuple(a for a in PREFERENCE if a in sample.digests)
        found: list[str] = []
        for algorithm in PREFERENCE:
            digests, _size, status = self._head_digest(sample.path, OURS_TO_RFC[algorithm])
            if status == 200 and algorithm in digests:
                found.append(algorithm)
        log.debug("%s: server digests %s", self._where, found)
        return tuple(found)

    # -- reading -------------------------------------------------------------
    def stat_root(self, path: str) -> RootInfo | None:
        server_path = self._copy_path(path)
        try:
            # No trailing "/": some servers (XRootD) answer 500 for "file/".
            status, resources = self._propfind(server_path.rstrip("/") or "/", 0,
                                               body=STAT_BODY)
        except _TransportError as exc:
            raise LocationUnreachable(str(exc)) from None
        except _StatusError as exc:
            raise CopyFailed(f"{self._where_of(server_path)}: {exc}") from None
        if status == 404:
            return None
        if status == 401:
            raise LocationUnreachable(
                f"authentication failed at {self._where} (HTTP 401); check the location's auth")
        if status == 403:
            raise CopyFailed(f"access denied to {self._where_of(server_path)} (HTTP 403)")
        if status != 207:
            raise CopyFailed(f"{self._where_of(server_path)}: PROPFIND answered HTTP {status}")
        if resources and not resources[0].is_collection:
            raise NotAFolder(f"{self._where_of(server_path)} is a file, not a folder")
        where = quote(server_path, safe="/", errors="surrogateescape")
        host, port = self._host
        # The scheme is left out: one host and port serves one of http or https.
        names = [f"webdav:{alias}{where}" for alias in host_aliases(host, port)]
        if resources and resources[0].resource_id:
            names.append(RESOURCE_KEY + resources[0].resource_id)
        return RootInfo(identity=names[0], aliases=tuple(names[1:]))

    def storage_identity(self, path: str, root: RootInfo) -> dict[str, str]:
        """The location's URL and the copy path, normalised (no user info, query
        or fragment: never a secret), and the folder's own id where the server
        gives one (RFC 5842 ``resource-id``, ``oc:id``): a folder deleted and
        uploaded again under the same path is other storage."""
        facts = {"kind": self.kind, "url": normal_url(self._origin + quote(
                     self._base, safe="/", errors="surrogateescape")),
                 "path": normal_path(path), "resolved root": root.identity or ""}
        resource = next((alias.removeprefix(RESOURCE_KEY) for alias in root.aliases
                         if alias.startswith(RESOURCE_KEY)), None)
        if resource:
            facts["resource id"] = resource
        return facts

    def _where_of(self, server_path: str) -> str:
        return redact(self._url(server_path))

    def _children(self, folder: str, resources: list[DavResource]
                  ) -> list[tuple[str, DavResource]]:
        """(name, resource) of the members of ``folder`` in a Depth: 1 answer."""
        own = folder.rstrip("/")
        out: list[tuple[str, DavResource]] = []
        skipped_self = False
        for index, resource in enumerate(resources):
            path = resource.path.rstrip("/")
            if path == own or (index == 0 and not skipped_self and resource.is_collection
                               and path.rsplit("/", 1)[-1] == own.rsplit("/", 1)[-1]
                               and not any(r.path.rstrip("/") == own for r in resources)):
                skipped_self = True
                continue
            if resource.status is not None and resource.status != 200:
                continue
            name = path.rsplit("/", 1)[-1]
            out.append((name, resource))
        return out

    def walk(self, path: str) -> Iterator[Entry | WalkProblem]:
        top = self._copy_path(path).rstrip("/")
        try:
            yield from self._walk_folder(top, "", 0)
        except _TransportError as exc:
            raise CopyFailed(f"listing stopped: {exc}") from None
        except _StatusError as exc:
            raise CopyFailed(f"listing stopped: {self._where} answers {exc}") from None

    def _walk_folder(self, folder: str, prefix: str, depth: int
                     ) -> Iterator[Entry | WalkProblem]:
        here = prefix.rstrip("/")
        if depth > MAX_DEPTH:
            yield WalkProblem(here, f"more than {MAX_DEPTH} folders deep (a loop?)")
            return
        status, resources = self._propfind(folder + "/", 1)
        if status == 401:
            raise CopyFailed(f"authentication refused while listing {here or '/'} (HTTP 401)")
        if status != 207:
            detail = {403: "permission denied (HTTP 403)",
                      404: "folder vanished while listing (HTTP 404)"}.get(
                          status, f"cannot list (HTTP {status})")
            yield WalkProblem(here, detail)
            return
        children = self._children(folder, resources)
        keyed = sorted(children, key=lambda c: c[0] + "/" if c[1].is_collection else c[0])
        for name, resource in keyed:
            rel = prefix + name
            if name in ("", ".", "..") or "/" in name:
                yield WalkProblem(rel, f"unusable name in listing: {name!r}")
                continue
            if resource.is_collection:
                yield from self._walk_folder(folder + "/" + name, rel + "/", depth + 1)
                continue
            size = resource.size
            if size is None:
                _digests, head_size, _status = self._head_digest(resource.path, None)
                size = head_size
            yield Entry(rel, EntryKind.FILE, size or 0, resource.mtime_ns, resource.etag,
                        dict(resource.digests))

    def _head_digest(self, server_path: str, want: str | None
                     ) -> tuple[dict[str, str], int | None, int]:
        """HEAD a file (following redirects), asking for ``want`` digests."""
        url = self._url(server_path)
        headers = {"Want-Digest": want} if want else {}

        def send(session: requests.Session) -> tuple[dict[str, str], int | None, int]:
            response = session.head(url, headers=headers, allow_redirects=True,
                                    timeout=self._timeout)
            self._check_retryable(response)
            response.close()
            length = response.headers.get("Content-Length", "")
            return (parse_digest_header(response.headers.get("Digest")),
                    int(length) if length.isdigit() else None, response.status_code)

        return self._call(send)

    def open_read(self, path: str, relpath: str) -> BinaryIO:
        server_path = self._copy_path(path, relpath)
        url = self._url(server_path)

        def send(session: requests.Session) -> requests.Response:
            response = session.get(url, stream=True, timeout=self._timeout)
            self._check_retryable(response)
            return response

        try:
            response = self._call(send)
        except _TransportError as exc:
            raise CopyFailed(str(exc)) from None
        except _StatusError as exc:
            raise OSError(errno.EIO, str(exc), relpath) from None
        if response.status_code == 200:
            announced = response.headers.get("Content-Length", "")
            length = int(announced) if announced.isdigit() else self._listed_size(server_path)
            return buffered(partial(response.raw.read, decode_content=True), response.close,
                            CHUNK, length=length, errors=_TRANSPORT_ERRORS,
                            describe=self._describe_broken_read)
        response.close()
        status = response.status_code
        if status == 404:
            raise FileNotFoundError(errno.ENOENT, "not found (HTTP 404)", relpath)
        if status == 403:
            raise PermissionError(errno.EACCES, "permission denied (HTTP 403)", relpath)
        if status == 401:
            raise CopyFailed(f"authentication refused reading {relpath} (HTTP 401)")
        raise OSError(errno.EIO, f"HTTP {status}", relpath)

    def _listed_size(self, server_path: str) -> int | None:
        """The size PROPFIND gives for a file (for a body sent without a
        Content-Length, whose end cannot be told from a cut)."""
        try:
            status, resources = self._propfind(server_path, 0)
        except (_TransportError, _StatusError):
            return None
        return resources[0].size if status == 207 and resources else None

    def _describe_broken_read(self, exc: BaseException) -> str:
        return describe_transport_error(exc, self._where, self._timeout)[0]

    def hash_files(
        self,
        path: str,
        entries: Sequence[Entry],
        algorithms: Sequence[str],
        *,
        workers: int = 1,
        force_full: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Iterator[HashResult]:
        force = force_full or self._force_download
        top = self._copy_path(path).rstrip("/")

        def one(entry: Entry) -> HashResult:
            result = self._hash_one(top, entry, algorithms, force)
            if progress and result.error is None:
                progress(1, result.size if result.method == "full" else 0)
            return result

        try:
            if workers <= 1 or len(entries) < 2:
                for entry in entries:
                    yield one(entry)
                return
            yield from map_bounded(one, entries, workers, "webdav")
        except _TransportError as exc:
            raise CopyFailed(f"stopped: {exc}") from None

    def _hash_one(self, top: str, entry: Entry, algorithms: Sequence[str],
                  force: bool) -> HashResult:
        server_path = top + "/" + entry.path
        offered = self._server_algorithms
        askable = [a for a in algorithms if a in OURS_TO_RFC
                   and (offered is None or a in offered)]
        want = want_digest_header(askable)
        if not force:
            hit = usable(entry.digests, algorithms)
            if hit:
                return HashResult(entry.path, {hit[0]: hit[1]}, size=entry.size,
                                  method="digest", via=f"server {hit[0]} (PROPFIND Checksums)")
            if want:
                try:
                    digests, size, status = self._head_digest(server_path, want)
                except _StatusError as exc:
                    return HashResult(entry.path, {}, error=str(exc))
                error = self._file_status_error(status, entry.path)
                if error:
                    return error
                hit = usable(digests, algorithms)
                if hit:
                    return HashResult(entry.path, {hit[0]: hit[1]},
                                      size=entry.size if size is None else size,
                                      method="digest", via=f"server {hit[0]} (Want-Digest)")
        return self._download(server_path, entry, algorithms, want if force else None)

    def _file_status_error(self, status: int, relpath: str) -> HashResult | None:
        if status == 200:
            return None
        if status == 401:
            raise CopyFailed(f"authentication refused reading {relpath} (HTTP 401)")
        detail = {403: "permission denied (HTTP 403)",
                  404: "vanished since the listing (HTTP 404)"}.get(status, f"HTTP {status}")
        return HashResult(relpath, {}, error=detail)

    def _download(self, server_path: str, entry: Entry, algorithms: Sequence[str],
                  want: str | None) -> HashResult:
        """GET and hash here.  With ``want``, also ask the server for its digest
        (a separate HEAD: XRootD 5.5 mishandles Want-Digest on GET, answering
        404 or crashing) to say whether the server's checksum agrees."""
        url = self._url(server_path)
        local = [a for a in algorithms if a in FACTORIES]

        def send(session: requests.Session) -> tuple[int, dict[str, str], int]:
            with session.get(url, stream=True, timeout=self._timeout) as resp:
                self._check_retryable(resp)
                if resp.status_code != 200:
                    return resp.status_code, {}, 0
                raw = resp.raw
                # One byte past the listed size is enough to tell "too long",
                # and bounds what a server that never stops can make us read.
                left = entry.size + 1

                def read(n: int) -> bytes:
                    nonlocal left
                    data: bytes = raw.read(min(n, CHUNK, left), decode_content=True) \
                        if left else b""
                    left -= len(data)
                    return data

                digests, size = hash_stream(read, local)
                if size < entry.size:
                    raise _WrongLength(
                        f"read {size} bytes, the listing said {entry.size}: the transfer "
                        "ended early or the file changed during the audit")
                if size > entry.size:
                    raise _WrongLength(
                        f"the server sent more than the {entry.size} bytes the listing "
                        "said: the file changed during the audit or the transfer is broken")
                return 200, digests, size

        try:
            status, digests, size = self._call(send)
        except (_StatusError, _WrongLength) as exc:
            return HashResult(entry.path, {}, error=str(exc))
        error = self._file_status_error(status, entry.path)
        if error:
            return error
        server: dict[str, str] = {}
        if want:
            try:
                server, _size, head_status = self._head_digest(server_path, want)
            except _StatusError:
                head_status = 0
            if head_status != 200:
                server = {}
        via = "download"
        disagree = sorted(a for a, v in server.items() if a in digests and digests[a] != v)
        if disagree:
            via = (f"download; the server's {', '.join(disagree)} checksum differs from "
                   "the bytes it sent (server checksum stale or wrong)")
        elif server and any(a in digests for a in server):
            via = "download; server checksum agrees"
        return HashResult(entry.path, digests, size=size, method="full", via=via)
