"""RFC 3230 instance digests (``Want-Digest`` / ``Digest``), as dCache and XRootD
speak them.

A server digest is only worth trusting if it is read exactly right: a misread
one turns an intact copy into a "corrupt" one (or worse, the other way round).
So every value is checked for the length its algorithm must have, and anything
unknown or malformed is dropped, never guessed at.

Encodings (RFC 3230 section 4.1, RFC 5843, dCache's documentation): ``adler32``
is 8 hex digits; ``md5``, ``sha`` (SHA-1), ``sha-256`` and ``sha-512`` are
base64 of the raw digest.  Some servers send md5 as hex; both are accepted
because the two forms cannot be confused (32 hex digits vs 24 base64 chars).

XRootD's ``crc32`` is the POSIX ``cksum`` CRC, not zlib's CRC-32, so it is
deliberately not mapped to our ``crc32``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping

#: RFC 3230 algorithm token (lowercase) -> (our algorithm name, raw digest length).
RFC_TO_OURS: dict[str, tuple[str, int]] = {
    "adler32": ("adler32", 4), "md5": ("md5", 16), "sha": ("sha1", 20),
    "sha-256": ("sha256", 32), "sha-512": ("sha512", 64)}
OURS_TO_RFC: dict[str, str] = {ours: rfc for rfc, (ours, _n) in RFC_TO_OURS.items()}

#: Strongest first: what a Want-Digest header prefers when the server offers several.
PREFERENCE = ("sha256", "sha512", "md5", "sha1", "adler32")

_HEX = re.compile(r"^[0-9a-fA-F]+$")


def decode_value(algorithm: str, value: str) -> str | None:
    """Lowercase hex of an RFC 3230 ``value`` for our ``algorithm``, or None if
    the value is not a well-formed digest of that algorithm."""
    rfc = OURS_TO_RFC.get(algorithm)
    if rfc is None:
        return None
    length = RFC_TO_OURS[rfc][1]
    value = value.strip().strip('"')
    if algorithm == "adler32":
        # Hex per RFC 3230 and dCache; some servers drop leading zeros.
        if not value or len(value) > 8 or not _HEX.match(value):
            return None
        return f"{int(value, 16):08x}"
    if len(value) == 2 * length and _HEX.match(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != length:
        return None
    return raw.hex()


def parse_digest_header(header: str | None) -> dict[str, str]:
    """``Digest: adler32=084b021f, md5=+anmiQ6x...==`` -> ``{"adler32": "084b021f",
    "md5": "f9a9e6..."}``.  Unknown or malformed items are left out.

    The same format serves dCache's ``Checksums`` PROPFIND property."""
    out: dict[str, str] = {}
    if not header:
        return out
    for item in header.split(","):
        token, sep, value = item.strip().partition("=")
        if not sep:
            continue
        mapped = RFC_TO_OURS.get(token.strip().lower())
        if mapped is None:
            continue
        decoded = decode_value(mapped[0], value)
        if decoded is not None:
            out.setdefault(mapped[0], decoded)
    return out


def want_digest_header(algorithms: Iterable[str]) -> str | None:
    """A ``Want-Digest`` value asking for ``algorithms`` (ours), strongest
    preferred; None when none of them has an RFC 3230 name."""
    wanted = [a for a in PREFERENCE if a in set(algorithms)]
    if not wanted:
        return None
    parts = []
    for index, algorithm in enumerate(wanted):
        q = max(1.0 - 0.1 * index, 0.1)
        parts.append(OURS_TO_RFC[algorithm] + ("" if index == 0 else f";q={q:.1f}"))
    return ", ".join(parts)


def usable(digests: Mapping[str, str], algorithms: Iterable[str]) -> tuple[str, str] | None:
    """The strongest of ``digests`` that is among ``algorithms``, as
    (algorithm, hex), or None."""
    wanted = set(algorithms)
    for algorithm in PREFERENCE:
        if algorithm in wanted and algorithm in digests:
            return algorithm, digests[algorithm]
    return None
