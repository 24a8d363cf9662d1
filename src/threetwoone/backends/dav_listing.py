"""Reading WebDAV ``PROPFIND`` answers (RFC 4918 multistatus).

Servers differ more than the RFC suggests, and the listing decides what the
audit believes is there, so this parser is lenient in form and strict in
meaning:

* ``href`` may be a full URL or an absolute path; most servers percent-encode
  it, XRootD sends the name as it is on disk (spaces, UTF-8, even bytes that
  are not UTF-8).  A href that cannot be a percent-encoded URL path is taken
  literally; see :func:`href_to_path`.
* Only properties under a ``200`` propstat count; a resource whose properties
  were refused is listed without them, never with made-up values.
* dCache's ``{http://www.dcache.org/2013/webdav}Checksums`` is read with the
  same RFC 3230 rules as the ``Digest`` header.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

from .http_digest import parse_digest_header

DAV = "{DAV:}"
DCACHE_CHECKSUMS = "{http://www.dcache.org/2013/webdav}Checksums"

#: The body we send: only what the audit needs (plus dCache's checksums, which
#: dCache does not return unless asked by name).
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<D:propfind xmlns:D="DAV:" xmlns:R="http://www.dcache.org/2013/webdav"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
    b"<R:Checksums/>"
    b"</D:prop></D:propfind>"
)

#: For a copy's root: also what identifies the folder on the server, where the
#: server says (RFC 5842 ``resource-id``; ownCloud/Nextcloud ``oc:id``, which
#: holds the instance id), so that one folder reached by two paths counts once.
STAT_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<D:propfind xmlns:D="DAV:" xmlns:OC="http://owncloud.org/ns"><D:prop>'
    b"<D:resourcetype/><D:getlastmodified/><D:resource-id/><OC:id/>"
    b"</D:prop></D:propfind>"
)
RESOURCE_ID = DAV + "resource-id"
OWNCLOUD_ID = "{http://owncloud.org/ns}id"

# Characters that may appear in a percent-encoded URL path (RFC 3986 pchar + "/").
_URL_PATH = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$")

# Bytes that are not UTF-8 are parked in a private-use plane while the XML parser
# runs, then turned back into surrogateescape characters (os.fsdecode's form).
_PARK_BASE = 0x10FF00


class ListingError(ValueError):
    """The server's answer is not a multistatus we can read."""


@dataclass(frozen=True, slots=True)
class DavResource:
    #: Server path, decoded (str with surrogateescape for non-UTF-8 bytes).
    path: str
    is_collection: bool
    size: int | None = None
    mtime_ns: int | None = None
    etag: str | None = None
    digests: dict[str, str] = field(default_factory=dict)
    #: HTTP status given for the resource itself (``<D:status>`` outside a propstat).
    status: int | None = None
    #: What the server says identifies the resource, whatever its path (see STAT_BODY).
    resource_id: str | None = None


def href_to_path(href: str, literal: bool = False) -> tuple[str, bool]:
    """The server path an ``href`` names, and whether it was percent-encoded.

    A href containing characters that a URL path cannot hold (space, non-ASCII,
    a ``%`` not followed by two hex digits) is literal: it is returned as is.
    ``literal`` forces that reading (for a server known to send literal hrefs,
    where ``100%25.txt`` is a file name, not ``100%.txt``)."""
    href = href.strip()
    if "://" in href[:12]:
        href = urlsplit(href).path or "/"
    if not literal and _URL_PATH.match(href):
        return unquote(href, encoding="utf-8", errors="surrogateescape"), True
    return href, False


def _status_code(text: str | None) -> int | None:
    if not text:
        return None
    parts = text.split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def http_date_ns(text: str | None) -> int | None:
    """An HTTP date (``getlastmodified``, ``Last-Modified``) in nanoseconds,
    whole seconds; None when absent or unreadable."""
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 1123 dates are GMT
        return None
    return int(when.timestamp()) * 1_000_000_000


def _size(text: str | None) -> int | None:
    if text is None or not text.strip().isdigit():
        return None
    return int(text.strip())


def _unpark(text: str) -> str:
    if not any(ord(c) >= _PARK_BASE for c in text):
        return text
    return "".join(chr(ord(c) - _PARK_BASE + 0xDC00) if _PARK_BASE + 0x80 <= ord(c)
                   <= _PARK_BASE + 0xFF else c for c in text)


def _parse_xml(body: bytes) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError as first:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise ListingError(f"not a WebDAV multistatus: {first}") from None
    # Raw non-UTF-8 names in the XML (XRootD): park them, parse, unpark later.
    text = body.decode("utf-8", errors="surrogateescape")
    text = "".join(chr(ord(c) - 0xDC00 + _PARK_BASE) if 0xDC80 <= ord(c) <= 0xDCFF else c
                   for c in text)
    try:
        return ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        raise ListingError(f"not a WebDAV multistatus: {exc}") from None


def _resource_id(props: dict[str, ET.Element]) -> str | None:
    element = props.get(RESOURCE_ID)
    if element is not None:  # <D:resource-id><D:href>urn:uuid:...</D:href></D:resource-id>
        text = element.findtext(DAV + "href")
        if text and text.strip():
            return "rfc5842:" + text.strip()
    element = props.get(OWNCLOUD_ID)
    if element is not None and element.text and element.text.strip():
        return "owncloud:" + element.text.strip()
    return None


def parse_multistatus(body: bytes, literal: bool = False) -> tuple[list[DavResource], bool]:
    """Resources of a multistatus body, and whether any href was literal
    (not percent-encoded).  See :func:`href_to_path` for ``literal``: it applies
    to every href of the answer; without it, each href is judged by itself, so a
    caller that learns an answer held a literal href reads it again with
    ``literal=True`` (hrefs before the first literal one were decoded)."""
    root = _parse_xml(body)
    if root.tag != DAV + "multistatus":
        raise ListingError(f"not a WebDAV multistatus (root element {root.tag!r})")
    out: list[DavResource] = []
    saw_literal = False
    for response in root.iter(DAV + "response"):
        href = response.findtext(DAV + "href")
        if href is None:
            continue
        path, encoded = href_to_path(_unpark(href), literal)
        saw_literal = saw_literal or not encoded
        status = _status_code(response.findtext(DAV + "status"))
        props: dict[str, ET.Element] = {}
        for propstat in response.iter(DAV + "propstat"):
            code = _status_code(propstat.findtext(DAV + "status"))
            if code is not None and code != 200:
                continue
            prop = propstat.find(DAV + "prop")
            if prop is not None:
                for child in prop:
                    props.setdefault(child.tag, child)
        rtype = props.get(DAV + "resourcetype")
        is_collection = rtype is not None and rtype.find(DAV + "collection") is not None
        checksums = props.get(DCACHE_CHECKSUMS)
        etag = props.get(DAV + "getetag")
        out.append(DavResource(
            path=path,
            is_collection=is_collection,
            size=_size(props[DAV + "getcontentlength"].text)
            if DAV + "getcontentlength" in props else None,
            mtime_ns=http_date_ns(props[DAV + "getlastmodified"].text)
            if DAV + "getlastmodified" in props else None,
            etag=etag.text.strip() if etag is not None and etag.text else None,
            digests=parse_digest_header(checksums.text) if checksums is not None else {},
            status=status,
            resource_id=_resource_id(props),
        ))
    return out, saw_literal
