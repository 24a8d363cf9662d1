"""RFC 3230 digests and PROPFIND answers as real servers write them (dCache's
documentation, XRootD 5.5, WsgiDAV 4): read exactly, or not at all."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest

from threetwoone.backends.dav_listing import href_to_path, parse_multistatus
from threetwoone.backends.http_digest import (
    decode_value,
    parse_digest_header,
    usable,
    want_digest_header,
)

DATA = b"hello\n"
MD5_B64 = base64.b64encode(hashlib.md5(DATA).digest()).decode()
SHA256_B64 = base64.b64encode(hashlib.sha256(DATA).digest()).decode()


def test_digest_header_encodings() -> None:
    header = f"adler32=084b021f, MD5={MD5_B64},SHA-256={SHA256_B64}"
    assert parse_digest_header(header) == {
        "adler32": f"{zlib.adler32(DATA):08x}",
        "md5": hashlib.md5(DATA).hexdigest(),
        "sha256": hashlib.sha256(DATA).hexdigest(),
    }


def test_adler32_without_leading_zeros_and_md5_in_hex() -> None:
    assert decode_value("adler32", "4b021f") == "004b021f"
    assert decode_value("md5", hashlib.md5(DATA).hexdigest().upper()) == \
        hashlib.md5(DATA).hexdigest()


@pytest.mark.parametrize("header", [
    "adler32=xyz", "adler32=123456789", "md5=AAAA", "md5=not base64!!",
    "sha-256=" + MD5_B64,            # a value of the wrong length
    "crc32=b3beab91",                # XRootD's crc32 is POSIX cksum: never ours
    "UNIXcksum=3015617425", "adler32", "",
])
def test_malformed_or_unknown_digests_are_dropped(header: str) -> None:
    assert parse_digest_header(header) == {}


def test_want_digest_prefers_the_strongest() -> None:
    assert want_digest_header(["xxh3_128", "adler32", "md5"]) == "md5, adler32;q=0.9"
    assert want_digest_header(["xxh3_128"]) is None
    assert usable({"adler32": "1", "md5": "2"}, ["adler32", "md5"]) == ("md5", "2")
    assert usable({"adler32": "1"}, ["xxh3_128"]) is None


def test_href_forms() -> None:
    assert href_to_path("/a%20b/c%25d") == ("/a b/c%d", True)
    assert href_to_path("https://h.example:2880/pnfs/x%C3%BC") == ("/pnfs/xü", True)
    # XRootD writes names as they are: a space or a stray % means literal.
    assert href_to_path("/ds/a b%ü.txt") == ("/ds/a b%ü.txt", False)
    assert href_to_path("/ds/100%25.txt", literal=True) == ("/ds/100%25.txt", False)
    assert href_to_path("/bad%FF") == ("/bad\udcff", True)


DCACHE = f"""<?xml version="1.0" encoding="utf-8" ?>
<d:multistatus xmlns:d="DAV:" xmlns:ns1="http://www.dcache.org/2013/webdav">
<d:response><d:href>/disk/run1/</d:href>
<d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype>
<d:getlastmodified>Tue, 10 Nov 2015 08:39:30 GMT</d:getlastmodified></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat>
<d:propstat><d:prop><d:getcontentlength/><ns1:Checksums/></d:prop>
<d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>
<d:response><d:href>/disk/run1/test-1447231167-1</d:href>
<d:propstat><d:prop><d:resourcetype/><d:getcontentlength>6</d:getcontentlength>
<d:getlastmodified>Tue, 10 Nov 2015 08:39:30 GMT</d:getlastmodified>
<d:getetag>"0000C05ED3F4D1B4419AA7B1E3C8B7E8C4A2_-1235376208"</d:getetag>
<ns1:Checksums>adler32=084b021f,md5={MD5_B64}</ns1:Checksums></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
</d:multistatus>""".encode()


def test_dcache_listing_with_checksums() -> None:
    resources, literal = parse_multistatus(DCACHE)
    assert not literal
    folder, item = resources
    assert folder.is_collection and folder.path == "/disk/run1/" and folder.size is None
    assert not item.is_collection and item.size == 6
    assert item.mtime_ns == 1447144770 * 1_000_000_000
    assert item.etag == '"0000C05ED3F4D1B4419AA7B1E3C8B7E8C4A2_-1235376208"'
    assert item.digests == {"adler32": "084b021f", "md5": hashlib.md5(DATA).hexdigest()}


def test_xrootd_listing_with_raw_bytes_in_names() -> None:
    body = (b'<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">'
            b"<D:response><D:href>/ds/bad\xff name.txt</D:href><D:propstat><D:prop>"
            b"<lp1:getcontentlength xmlns:lp1=\"DAV:\">1</lp1:getcontentlength>"
            b"<lp1:iscollection xmlns:lp1=\"DAV:\">0</lp1:iscollection></D:prop>"
            b"<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
            b"</D:multistatus>")
    [item], literal = parse_multistatus(body)
    assert literal
    assert item.path == "/ds/bad\udcff name.txt" and item.size == 1


def test_not_a_multistatus() -> None:
    from threetwoone.backends.dav_listing import ListingError

    with pytest.raises(ListingError):
        parse_multistatus(b"<html><body>login page</body></html>")
    with pytest.raises(ListingError):
        parse_multistatus(b"not xml at all")


def _listing(*hrefs: str) -> bytes:
    items = "".join(
        f"<D:response><D:href>{href}</D:href><D:propstat><D:prop>"
        f"<D:getcontentlength>1</D:getcontentlength></D:prop>"
        f"<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>" for href in hrefs)
    return (f'<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:">'
            f"{items}</D:multistatus>").encode()


def test_literal_mode_reads_every_href_as_it_is() -> None:
    """Regression: the ``literal`` argument was reset before use, so a server known
    to send names as they are (XRootD) still had ``100%25.txt`` decoded."""
    resources, literal = parse_multistatus(_listing("/ds/100%25.txt", "/ds/q%41"), True)
    assert [r.path for r in resources] == ["/ds/100%25.txt", "/ds/q%41"]
    assert literal


def test_a_literal_href_later_in_an_answer_is_reported() -> None:
    """Hrefs before the first literal one cannot be told apart by themselves: the
    caller learns the answer held a literal href and reads the whole answer again."""
    resources, literal = parse_multistatus(_listing("/ds/100%25.txt", "/ds/a b"))
    assert literal
    resources, _ = parse_multistatus(_listing("/ds/100%25.txt", "/ds/a b"), literal)
    assert [r.path for r in resources] == ["/ds/100%25.txt", "/ds/a b"]
