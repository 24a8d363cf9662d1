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
resets are retried with backoff (see :mod:`.webdav_http`), then a per-file error or
:class:`CopyFailed`.  No secret (token, password, query string) ever appears in
a message.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, BinaryIO, NamedTuple, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3

from ..checksums import FACTORIES, hash_stream
from ..envnames import env_variable
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
    http_date_ns,
    parse_multistatus,
)
from .errors import CopyFailed, LocationUnreachable, NotAFolder
from .http_digest import OURS_TO_RFC, PREFERENCE, parse_digest_header, usable, want_digest_header
from .interface import Backend, HashRequest, HashResult
from .listed import Entry, EntryKind, FolderListing, RootInfo, WalkProblem
from .streams import buffered
from .webdav_http import (
    NETWORK_ERRORS,
    RETRY_DELAYS,
    BearerAuth,
    HttpTransport,
    StatusError,
    TransportError,
    WrongLength,
    check_retryable,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
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
        verify: bool | str = True
        if settings.get("verify_tls") is False:
            verify = False
        elif settings.get("ca_bundle"):
            verify = str(settings["ca_bundle"])
        cert, key = settings.get("cert"), settings.get("key")
        self._http = HttpTransport(
            self._where, timeout=self._timeout, verify=verify,
            cert=((str(cert), str(key)) if key else str(cert)) if cert else None,
            retry_delays=type(self).retry_delays)
        self._server_algorithms: tuple[str, ...] | None = None
        self._literal_hrefs = False

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
                    f"{self._where}: {env_variable(var, 'auth.token_env')} is not set "
                    "or empty")
            if not _BEARER_TOKEN.fullmatch(token):
                # Never sent: a line break would end the header (and the HTTP
                # library would quote the whole value in its error).
                raise LocationUnreachable(
                    f"{self._where}: {env_variable(var, 'auth.token_env')} holds "
                    "a line break, space or other character a bearer token cannot "
                    "contain (the value is not shown)")
            return BearerAuth(token)
        if kind == "basic":
            var = str(auth.get("password_env", ""))
            password = os.environ.get(var)
            if not password:
                raise LocationUnreachable(
                    f"{self._where}: {env_variable(var, 'auth.password_env')} is not set "
                    "or empty")
            if _CONTROL.search(password):
                raise LocationUnreachable(
                    f"{self._where}: {env_variable(var, 'auth.password_env')} holds "
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

    def _url(self, server_path: str) -> str:
        return self._origin + quote(server_path, safe="/", errors="surrogateescape")

    def _copy_path(self, path: str, relpath: str = "") -> str:
        """Server path of ``relpath`` in the copy at ``path`` (decoded, normalised:
        the copy paths ``run1``, ``./run1`` and ``run1/`` are one folder)."""
        return normal_path(f"{self._base}/{path}/{relpath}")

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
                        raise TransportError(
                            f"{self._where}: listing redirected to another server")
                    target = nxt
                    continue
                check_retryable(response)
                return (response.status_code, response.content,
                        response.headers.get("Server", ""))
            raise TransportError(f"{self._where}: too many redirects while listing")

        status, answer, server = self._http.call(send, retry_connect=retry_connect)
        if status != 207:
            return status, []
        if not self._literal_hrefs and server.lower().startswith(LITERAL_HREF_SERVERS):
            # Known to write hrefs as the names are on disk, also when every name
            # of an answer happens to look percent-encoded ("100%25.txt").
            self._literal_hrefs = True
        try:
            resources, literal = parse_multistatus(answer, self._literal_hrefs)
        except ListingError as exc:
            raise TransportError(f"{self._where}: {exc}") from None
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
        self._http.auth = self._make_auth()
        try:
            # Nothing listening, or no answer: say so now rather than after
            # the backoff (a restarting server mid-audit is retried, though).
            status, _resources = self._propfind(self._base + "/", 0, retry_connect=False)
        except TransportError as exc:
            raise LocationUnreachable(str(exc)) from None
        except StatusError as exc:
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

    def close(self) -> None:
        self._http.close()

    # -- capabilities ------------------------------------------------------
    def _server_digests(self) -> tuple[str, ...]:
        """What the server reports, learnt once per run by asking for each
        algorithm on one small file (a server may answer with another
        algorithm than the one asked for, e.g. XRootD with its first one)."""
        if self._server_algorithms is None:
            try:
                self._server_algorithms = self._probe_digests()
            except (TransportError, StatusError, LocationUnreachable, CopyFailed) as exc:
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
            digests, _size, status, _answer = self._head_digest(sample.path,
                                                                 OURS_TO_RFC[algorithm])
            if status == 200 and algorithm in digests:
                found.append(algorithm)
        log.debug("%s: server digests %s", self._where, found)
        return tuple(found)

    # -- reading -------------------------------------------------------------
    def _folder_propfind(self, shown: str, asked: str, depth: int, body: bytes
                         ) -> tuple[int, list[DavResource]] | None:
        """PROPFIND a copy's root or a folder below it (``asked``; ``shown`` in
        messages): None when it does not exist; the location unreachable when the
        server cannot be reached or refuses the login; else the answer."""
        try:
            status, resources = self._propfind(asked, depth, body=body)
        except TransportError as exc:
            raise LocationUnreachable(str(exc)) from None
        except StatusError as exc:
            raise CopyFailed(f"{self._where_of(shown)}: {exc}") from None
        if status == 404:
            return None
        if status == 401:
            raise LocationUnreachable(
                f"authentication failed at {self._where} (HTTP 401); check the location's auth")
        return status, resources

    def stat_root(self, path: str) -> RootInfo | None:
        server_path = self._copy_path(path)
        # No trailing "/": some servers (XRootD) answer 500 for "file/".
        answer = self._folder_propfind(server_path, server_path.rstrip("/") or "/", 0,
                                       STAT_BODY)
        if answer is None:
            return None
        status, resources = answer
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

    def list_folder(self, path: str) -> FolderListing | None:
        folder = self._copy_path(path).rstrip("/")
        answer = self._folder_propfind(folder, folder + "/", 1, PROPFIND_BODY)
        if answer is None:
            return None
        status, resources = answer
        if status != 207:
            raise CopyFailed(f"cannot list {self._where_of(folder)} (HTTP {status})")
        if resources and not resources[0].is_collection:
            raise NotAFolder(f"{self._where_of(folder)} is a file, not a folder")
        folders: list[str] = []
        entries: list[Entry] = []
        for name, resource in sorted(self._children(folder, resources), key=lambda c: c[0]):
            if resource.is_collection:
                folders.append(name)
            else:
                entries.append(Entry(name, EntryKind.FILE, resource.size or 0,
                                     resource.mtime_ns, resource.etag))
        return FolderListing(tuple(folders), tuple(entries))

    def walk(self, path: str) -> Iterator[Entry | WalkProblem]:
        top = self._copy_path(path).rstrip("/")
        try:
            yield from self._walk_folder(top, "", 0)
        except TransportError as exc:
            raise CopyFailed(f"listing stopped: {exc}") from None
        except StatusError as exc:
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
                head_size = self._head_digest(resource.path, None).size
                size = head_size
            yield Entry(rel, EntryKind.FILE, size or 0, resource.mtime_ns, resource.etag,
                        dict(resource.digests))

    def _head_digest(self, server_path: str, want: str | None) -> _Head:
        """HEAD a file (following redirects), asking for ``want`` digests."""
        url = self._url(server_path)
        headers = {"Want-Digest": want} if want else {}

        def send(session: requests.Session) -> _Head:
            response = session.head(url, headers=headers, allow_redirects=True,
                                    timeout=self._timeout)
            check_retryable(response)
            response.close()
            length = response.headers.get("Content-Length", "")
            return _Head(parse_digest_header(response.headers.get("Digest")),
                         int(length) if length.isdigit() else None, response.status_code,
                         response)

        return self._http.call(send)

    def _listing_change(self, server_path: str, entry: Entry,
                        response: requests.Response) -> str | None:
        """Why the file a HEAD or GET was answered about is not the one listed
        (replaced since: what it holds now says nothing about the listed file,
        which is then unreadable, not corrupt), or None.  The answer's own
        validators decide where it has some; a server that sends none (XRootD)
        is asked for the file's listing again, after the answer."""
        change = listing_change(entry, response)
        if change or has_validators(response):
            return change
        try:
            status, resources = self._propfind(server_path, 0)
        except StatusError as exc:
            return f"cannot tell whether it changed since the listing: {exc}"
        if status == 404:
            return "vanished since the listing (HTTP 404)"
        if status != 207 or not resources:
            return f"cannot tell whether it changed since the listing (HTTP {status})"
        now = resources[0]
        if now.size != entry.size or (entry.mtime_ns is not None
                                      and now.mtime_ns != entry.mtime_ns):
            return "changed since the listing (its size or modification time differs)"
        return None

    def open_read(self, path: str, relpath: str) -> BinaryIO:
        server_path = self._copy_path(path, relpath)
        url = self._url(server_path)

        def send(session: requests.Session) -> requests.Response:
            response = session.get(url, stream=True, timeout=self._timeout)
            check_retryable(response)
            return response

        try:
            response = self._http.call(send)
        except TransportError as exc:
            raise CopyFailed(str(exc)) from None
        except StatusError as exc:
            raise OSError(errno.EIO, str(exc), relpath) from None
        if response.status_code == 200:
            announced = response.headers.get("Content-Length", "")
            length = int(announced) if announced.isdigit() else self._listed_size(server_path)
            return buffered(partial(response.raw.read, decode_content=True), response.close,
                            CHUNK, length=length, errors=NETWORK_ERRORS,
                            describe=self._http.describe)
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
        except (TransportError, StatusError):
            return None
        return resources[0].size if status == 207 and resources else None


    def _hasher(self, path: str, request: HashRequest) -> Callable[[Entry], HashResult]:
        top = self._copy_path(path).rstrip("/")

        def one(entry: Entry) -> HashResult:
            try:
                return self._hash_one(top, entry, request.algorithms, request.full)
            except TransportError as exc:
                raise CopyFailed(f"stopped: {exc}") from None

        return one

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
                    digests, size, status, answer = self._head_digest(server_path, want)
                except StatusError as exc:
                    return HashResult(entry.path, {}, error=str(exc))
                error = self._answer_error(status, server_path, entry, answer)
                if error:
                    return error
                hit = usable(digests, algorithms)
                if hit:
                    return HashResult(entry.path, {hit[0]: hit[1]},
                                      size=entry.size if size is None else size,
                                      method="digest", via=f"server {hit[0]} (Want-Digest)")
        return self._download(server_path, entry, algorithms, want if force else None)

    def _answer_error(self, status: int, server_path: str, entry: Entry,
                      answer: requests.Response) -> HashResult | None:
        """The file's error by an answer about it (a HEAD or GET): its status,
        or that it shows another file than the one listed; None if neither."""
        error = self._file_status_error(status, entry.path)
        if error:
            return error
        change = self._listing_change(server_path, entry, answer)
        return HashResult(entry.path, {}, error=change) if change else None

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

        def send(session: requests.Session
                 ) -> tuple[int, dict[str, str], int, requests.Response]:
            with session.get(url, stream=True, timeout=self._timeout) as resp:
                check_retryable(resp)
                if resp.status_code != 200 or listing_change(entry, resp):
                    return resp.status_code, {}, 0, resp
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
                    raise WrongLength(
                        f"read {size} bytes, the listing said {entry.size}: the transfer "
                        "ended early or the file changed during the audit")
                if size > entry.size:
                    raise WrongLength(
                        f"the server sent more than the {entry.size} bytes the listing "
                        "said: the file changed during the audit or the transfer is broken")
                return 200, digests, size, resp

        try:
            status, digests, size, answer = self._http.call(send)
        except (StatusError, WrongLength) as exc:
            return HashResult(entry.path, {}, error=str(exc))
        error = self._answer_error(status, server_path, entry, answer)
        if error:
            return error
        server: dict[str, str] = {}
        if want:
            try:
                server, _size, head_status, _answer = self._head_digest(server_path, want)
            except StatusError:
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


class _Head(NamedTuple):
    """What a HEAD answered: digests, size, status, and the answer itself."""

    digests: dict[str, str]
    size: int | None
    status: int
    response: requests.Response


def listing_change(entry: Entry, response: requests.Response) -> str | None:
    """Why an answer about a file (HEAD or GET) shows another file than the one
    listed, by the answer's own headers, or None: another size (a HEAD's
    ``Content-Length``), another second in ``Last-Modified``, or, without a
    redirect (which may lead to a pool that spells ETags its own way), another
    ETag."""
    if response.request.method == "HEAD":
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) != entry.size:
            return (f"changed since the listing (now {int(length):,} bytes, listed "
                    f"{entry.size:,})")
    modified = http_date_ns(response.headers.get("Last-Modified"))
    if entry.mtime_ns is not None and modified is not None and modified != entry.mtime_ns:
        return "changed since the listing (its modification time differs)"
    etag = response.headers.get("ETag")
    if entry.ident and etag and not response.history and _opaque(etag) != _opaque(entry.ident):
        return "changed since the listing (its ETag differs)"
    return None


def has_validators(response: requests.Response) -> bool:
    """Whether the answer's headers can tell a replaced file (see listing_change)."""
    return http_date_ns(response.headers.get("Last-Modified")) is not None or (
        bool(response.headers.get("ETag")) and not response.history)


def _opaque(etag: str) -> str:
    """An entity tag without weakness mark and quotes (WsgiDAV lists its
    ``getetag`` unquoted, and sends the ``ETag`` header quoted)."""
    return etag.strip().removeprefix("W/").strip('"')
