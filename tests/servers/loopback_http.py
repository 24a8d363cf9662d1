"""A threaded HTTP server on a free loopback port, for the test servers written
for faults and scales the real ones cannot produce (fault_proxy, s3_listing)."""

from __future__ import annotations

import http.server
import threading


class LoopbackHTTP:
    """Serves ``handler`` on 127.0.0.1 from a daemon thread until :meth:`stop`."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
