"""What went wrong talking to a server, said in one line, for every HTTP backend.

requests, urllib3 and botocore each wrap the socket error that really happened
in exceptions of their own, several layers deep (``__cause__``, ``__context__``,
urllib3's ``reason``, botocore's ``kwargs['error']``, exceptions passed as
arguments).  :func:`chain` walks all of them; :func:`describe` finds the root
cause and says it, with a :class:`NetKind` the caller decides on (retry or not,
unreachable or not) instead of parsing the message.

Library exceptions are recognised by class name along their MRO, so this
module imports none of those libraries (a local-only run never pays for them,
and botocore's copies of the requests exceptions are recognised too).
"""

from __future__ import annotations

import enum
import socket
import ssl
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import urlsplit


class NetKind(enum.Enum):
    TLS_CERTIFICATE = "tls-certificate"
    TLS = "tls"
    DNS = "dns"
    CONNECT_TIMEOUT = "connect-timeout"
    READ_TIMEOUT = "read-timeout"
    REFUSED = "refused"
    RESET = "reset"
    CUT = "cut"          # the server closed the connection in the middle of a body
    LOST = "lost"        # broken pipe, protocol error: the connection is gone
    OTHER = "other"

    @property
    def fatal(self) -> bool:
        """Retrying cannot help: the same request fails the same way."""
        return self in (NetKind.TLS_CERTIFICATE, NetKind.TLS, NetKind.DNS)

    @property
    def no_answer(self) -> bool:
        """Nobody answered at all: at connect, report it rather than back off."""
        return self in (NetKind.REFUSED, NetKind.CONNECT_TIMEOUT, NetKind.READ_TIMEOUT)


class NetError(NamedTuple):
    message: str
    kind: NetKind


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps, each once."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        kwargs = getattr(current, "kwargs", None)
        wrapped = kwargs.get("error") if isinstance(kwargs, dict) else None
        for nxt in (current.__cause__, current.__context__, getattr(current, "reason", None),
                    wrapped, *current.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _is(item: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(item).__mro__)


def _host(where: str) -> str:
    return urlsplit(where).hostname or where if "://" in where else where.split("/")[0]


def describe(exc: BaseException, where: str, timeout: float | None = None) -> NetError:
    """One clear line for a request to ``where`` (a redacted URL) that failed."""
    parts = list(chain(exc))
    after = f" after {timeout:g} s" if timeout else ""
    within = f" within {timeout:g} s" if timeout else ""
    for item in parts:
        if isinstance(item, ssl.SSLCertVerificationError):
            reason = str(item.verify_message or item.reason or "verification failed")
            return NetError(f"TLS certificate of {where} not accepted: {reason} "
                            "(set ca_bundle, or verify_tls: false)", NetKind.TLS_CERTIFICATE)
    for item in parts:
        if isinstance(item, ssl.SSLError) or _is(item, "SSLError"):
            why = getattr(item, "reason", None)
            return NetError(f"TLS handshake with {where} failed"
                            + (f": {why}" if isinstance(why, str) else ""), NetKind.TLS)
    for item in parts:
        if isinstance(item, socket.gaierror) or _is(item, "NameResolutionError") or any(
                text in str(item) for text in ("Name or service not known",
                                               "nodename nor servname",
                                               "Temporary failure in name resolution")):
            return NetError(f"cannot resolve host {_host(where)!r} (DNS)", NetKind.DNS)
    # Before the timeouts: urllib3's NewConnectionError, raised for a refused
    # connection, is a subclass of its ConnectTimeoutError.
    for item in parts:
        if isinstance(item, ConnectionRefusedError) or "Connection refused" in str(item):
            return NetError(f"connection refused by {where}", NetKind.REFUSED)
    for item in parts:
        if _is(item, "ConnectTimeout", "ConnectTimeoutError"):
            return NetError(f"connecting to {where} timed out{after}", NetKind.CONNECT_TIMEOUT)
    for item in parts:
        if isinstance(item, TimeoutError) or _is(item, "ReadTimeout", "ReadTimeoutError"):
            return NetError(f"timed out: {where} did not answer{within}", NetKind.READ_TIMEOUT)
    for item in parts:
        if isinstance(item, ConnectionResetError):
            return NetError(f"connection reset by {where}", NetKind.RESET)
        if _is(item, "IncompleteRead", "IncompleteReadError", "ConnectionClosedError",
               "ResponseStreamingError"):
            return NetError(f"{where} closed the connection before the end of the data",
                            NetKind.CUT)
        if isinstance(item, BrokenPipeError):
            return NetError(f"connection to {where} broken", NetKind.LOST)
    for item in parts:
        if _is(item, "ProtocolError", "ConnectionError"):
            return NetError(f"connection to {where} lost", NetKind.LOST)
    return NetError(f"cannot talk to {where}: {type(exc).__name__}", NetKind.OTHER)
