"""A bucket of generated keys behind the S3 ``ListObjectsV2`` API, for listing
tests at a scale moto cannot serve: moto's listing re-sorts the whole bucket
for every page (20,000 keys took 100 s here), and holding 100,000 objects costs
it about 400 MB.

Only what a listing needs is answered: ``GET /<bucket>?list-type=2`` with
``prefix``, ``max-keys`` and ``continuation-token``, in key order, pages of at
most 1,000, as S3 does.  Keys are made on the fly from their number, so the
server holds nothing per key.
"""

from __future__ import annotations

import http.server
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from servers.loopback_http import LoopbackHTTP

PAGE = 1000


class ListingServer:
    """``count`` keys ``<prefix>run/dNNN/fNNNNNNN.fastq.gz`` in ``bucket``."""

    def __init__(self, bucket: str, prefix: str, count: int) -> None:
        self.bucket, self.prefix, self.count = bucket, prefix, count
        self.endpoint_url = ""

    def key(self, index: int) -> str:
        return f"{self.prefix}run/d{index // 1000:03d}/f{index:07d}.fastq.gz"

    def page(self, prefix: str, start: int, max_keys: int) -> bytes:
        # Every key starts with self.prefix + "run/": a prefix that is a leading
        # part of it matches all, any other matches none.
        matches = self.key(0).startswith(prefix)
        end = min(self.count, start + min(max_keys, PAGE)) if matches else start
        items = "".join(
            f"<Contents><Key>{escape(self.key(i))}</Key>"
            f"<LastModified>2024-01-01T00:00:00.000Z</LastModified>"
            f"<ETag>&quot;{i:032x}&quot;</ETag><Size>{i % 4096}</Size>"
            f"<StorageClass>STANDARD</StorageClass></Contents>" for i in range(start, end))
        truncated = matches and end < self.count
        token = f"<NextContinuationToken>{end}</NextContinuationToken>" if truncated else ""
        return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{self.bucket}</Name>'
                f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{end - start}</KeyCount>"
                f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{str(truncated).lower()}"
                f"</IsTruncated>{token}{items}</ListBucketResult>").encode()

    def start(self) -> str:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                if url.path.strip("/") != server.bucket or query.get("list-type") != ["2"]:
                    self.send_response(501)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.page(query.get("prefix", [""])[0],
                                   int(query.get("continuation-token", ["0"])[0]),
                                   int(query.get("max-keys", [str(PAGE)])[0]))
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.http = LoopbackHTTP(Handler)
        self.endpoint_url = self.http.url
        return self.endpoint_url

    def stop(self) -> None:
        self.http.stop()
