"""The HTTP side of the WebDAV backend: sessions, credentials, retries.

One :class:`HttpTransport` per location keeps a ``requests`` session per thread
(hashing runs on several), each with the location's TLS settings and
credentials, and runs every request through one retry loop: 5xx and 429
answers, resets, cut transfers and bodies of the wrong length are retried with
backoff (``Retry-After`` honoured up to a bound); DNS and TLS failures are not.
What went wrong is decided on :class:`~threetwoone.backends.neterrors.NetKind`,
never on message text.  The WebDAV protocol itself (PROPFIND, digests, the
walk) is in :mod:`threetwoone.backends.webdav`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
import urllib3

from .neterrors import describe

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Waits between attempts after a 5xx, a reset or a lost connection (seconds).
RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: A Retry-After longer than this is not honoured (we wait this long at most).
MAX_RETRY_AFTER = 30.0

#: What a failed request raises below requests' API (the body is read too).
NETWORK_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,
    OSError,
)


class TransportError(Exception):
    """A request could not be completed (after retries, where retrying made sense).
    ``fatal`` marks failures that retrying cannot fix (DNS, TLS)."""

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class WrongLength(Exception):
    """A GET body ended before (or ran past) the size the listing gave, without
    the connection reporting an error: a body delimited by closing the
    connection, cut short, looks exactly like a complete one.  Retried; in the
    end the file is unreadable, never corrupt."""


class StatusError(Exception):
    """The server kept answering with a 5xx (or 429) after every retry."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.retry_after = retry_after


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer`` (OIDC tokens, dCache macaroons)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:  # never show the token
        return "<bearer token>"


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


def check_retryable(response: requests.Response) -> None:
    """Raise :class:`StatusError` (closing the response) for an answer worth
    asking again: 5xx and 429."""
    if response.status_code in RETRY_STATUS:
        after = response.headers.get("Retry-After", "")
        response.close()
        raise StatusError(response.status_code, response.reason or "",
                          float(after) if after.isdigit() else None)


class HttpTransport:
    """Sessions and retries for one location at ``where`` (a redacted URL)."""

    def __init__(self, where: str, *, timeout: float, verify: bool | str,
                 cert: str | tuple[str, str] | None,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.where = where
        self.timeout = timeout
        self.retry_delays = retry_delays
        #: Credentials for every session; set once the location's are checked.
        self.auth: requests.auth.AuthBase | None = None
        self._verify = verify
        self._cert = cert
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def session(self) -> requests.Session:
        """This thread's session (made on first use)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = _Session(self._verify)
            session.verify = self._verify
            session.auth = self.auth
            # The stored bytes, not a compressed rendering of them.
            session.headers["Accept-Encoding"] = "identity"
            session.headers["User-Agent"] = "threetwoone (backup audit)"
            if self._cert:
                session.cert = self._cert
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def describe(self, exc: BaseException) -> str:
        return describe(exc, self.where, self.timeout).message

    def call(self, fn: Callable[[requests.Session], T], *, retry_connect: bool = True) -> T:
        """Run ``fn`` (one request, body included) with retries on 5xx, resets,
        lost connections and bodies of the wrong length.  ``retry_connect=False``
        gives up at once when nobody answers (at connect: report, do not wait)."""
        delays = self.retry_delays
        attempt = 0
        while True:
            wait_for: float | None = None
            try:
                return fn(self.session())
            except (StatusError, WrongLength) as exc:
                if attempt >= len(delays):
                    raise
                wait_for = exc.retry_after if isinstance(exc, StatusError) else None
                log.debug("%s: %s, retrying", self.where, exc)
            except NETWORK_ERRORS as exc:
                error = describe(exc, self.where, self.timeout)
                fatal = error.kind.fatal
                if fatal or attempt >= len(delays) or (error.kind.no_answer
                                                       and not retry_connect):
                    raise TransportError(error.message, fatal) from None
                log.debug("%s: %s, retrying", self.where, error.message)
            time.sleep(min(wait_for, MAX_RETRY_AFTER) if wait_for else delays[attempt])
            attempt += 1
