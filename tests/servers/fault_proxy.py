"""An HTTP proxy on loopback, in front of a real server (moto, XRootD, WsgiDAV),
that produces what those servers cannot: 5xx answers, bodies cut short (with
or without a ``Content-Length``), bodies longer than announced, and headers
replaced (a server that lies).  It also records every request it forwarded.

Each :class:`Fault` matches a method and the end of the request path and
applies ``times`` times; everything else is forwarded unchanged.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from dataclasses import dataclass, field
from typing import Any

from servers.loopback_http import LoopbackHTTP


@dataclass
class Fault:
    method: str
    key: str
    #: Answer this status instead of forwarding (e.g. 503) ...
    status: int | None = None
    #: ... or forward, then cut the connection after this many body bytes ...
    cut_after: int | None = None
    #: ... (with ``no_length``: send no Content-Length, so that the cut looks like
    #: the normal end of a body delimited by closing the connection) ...
    no_length: bool = False
    #: ... or forward with these bytes added to the end of the body ...
    extra: bytes = b""
    #: ... or forward with these response headers replaced (a server that lies).
    headers: dict[str, str] | None = None
    times: int = 1


@dataclass
class FaultProxy:
    """Forwards to ``127.0.0.1:upstream_port``; ``endpoint_url`` once started."""

    upstream_port: int
    faults: list[Fault] = field(default_factory=list)
    #: (method, path, status) of every request answered.
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    endpoint_url: str = ""

    def start(self) -> str:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _fault(self) -> Fault | None:
                with proxy.lock:
                    for fault in proxy.faults:
                        if (fault.times > 0 and fault.method == self.command
                                and self.path.split("?")[0].endswith("/" + fault.key)):
                            fault.times -= 1
                            return fault
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = self._fault()
                if fault is not None and fault.status is not None:
                    payload = b"<Error><Code>ServiceUnavailable</Code></Error>"
                    self.send_response(fault.status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    with proxy.lock:
                        proxy.seen.append((self.command, self.path, fault.status))
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port,
                                                      timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                with proxy.lock:
                    proxy.seen.append((self.command, self.path, answer.status))
                if fault is not None:
                    data += fault.extra
                self.send_response(answer.status)
                replaced = {k.lower(): v for k, v in ((fault and fault.headers) or {}).items()}
                for name, value in answer.getheaders():
                    if name.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                            "content-length", "date", "server", *replaced):
                        self.send_header(name, value)
                for name, value in replaced.items():
                    self.send_header(name, value)
                if fault is not None and fault.no_length:
                    # The body ends where the connection closes (RFC 9112 6.3).
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif self.command == "HEAD":
                    # No body, but the length of the object, as the server said.
                    self.send_header("Content-Length",
                                     answer.getheader("Content-Length") or "0")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault is not None and fault.cut_after is not None:
                    self.wfile.write(data[:fault.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle
            do_PROPFIND = do_OPTIONS = do_PROPPATCH = _handle

        self.http = LoopbackHTTP(Handler)
        self.endpoint_url = self.http.url
        return self.endpoint_url

    def stop(self) -> None:
        self.http.stop()

    def requests(self, method: str) -> list[str]:
        """Paths of the requests with ``method`` answered so far."""
        with self.lock:
            return [path for seen_method, path, _status in self.seen if seen_method == method]
