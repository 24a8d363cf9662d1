"""Producer checksum manifests in coreutils ``md5sum`` / ``sha256sum`` format.

Sequencing platforms deliver raw data with such files.  The format, as GNU
coreutils writes it:

* ``<hex>  <name>`` (text mode) or ``<hex> *<name>`` (binary marker);
* when the name contains a backslash, a newline or a carriage return, the line
  starts with ``\\`` and the name is escaped (``\\\\``, ``\\n``, ``\\r``);
* the BSD tag form ``MD5 (<name>) = <hex>`` (``--tag``) is read too.

Names are bytes in the file; we decode them with ``os.fsdecode`` rules so names
that are not UTF-8 survive.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128, "xxh3_128": 32}
_TAG_NAMES = {b"MD5": "md5", b"SHA1": "sha1", b"SHA256": "sha256", b"SHA512": "sha512",
              b"XXH128": "xxh3_128"}
_TAG_LINE = re.compile(rb"^(\\?)([A-Z0-9]+) \((.*)\) = ([0-9a-fA-F]+)$", re.S)


class ManifestError(ValueError):
    """A line that is not in md5sum format; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    path: str
    digest: str


def _unescape(name: bytes, line: int) -> bytes:
    out = bytearray()
    i = 0
    while i < len(name):
        c = name[i]
        if c == 0x5C:  # backslash
            if i + 1 >= len(name):
                raise ManifestError(line, "name ends with a lone backslash")
            nxt = name[i + 1]
            if nxt == 0x5C:
                out.append(0x5C)
            elif nxt == ord("n"):
                out.append(0x0A)
            elif nxt == ord("r"):
                out.append(0x0D)
            else:
                raise ManifestError(line, f"unknown escape '\\{chr(nxt)}' in name")
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _escape(name: bytes) -> tuple[bool, bytes]:
    if not any(c in name for c in (b"\\", b"\n", b"\r")):
        return False, name
    return True, name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


def normalize_path(name: str) -> str:
    """``./a//b`` -> ``a/b``: manifests are often written with ``find .``."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def parse(data: bytes, algorithm: str) -> list[ManifestEntry]:
    """Parse a manifest; raise ManifestError on the first malformed line."""
    width = HEX_LENGTHS.get(algorithm)
    entries: list[ManifestEntry] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        escaped = line.startswith(b"\\")
        body = line[1:] if escaped else line
        tag = _TAG_LINE.match(line)
        if tag and tag.group(2) in _TAG_NAMES:
            if _TAG_NAMES[tag.group(2)] != algorithm:
                raise ManifestError(number, f"a {tag.group(2).decode()} line in a "
                                            f"{algorithm} manifest")
            name, digest = tag.group(3), tag.group(4)
            escaped = bool(tag.group(1))
        else:
            match = re.match(rb"^([0-9a-fA-F]+) ([ *])(.*)$", body, re.S)
            if not match:
                raise ManifestError(number, "not '<checksum>  <name>' (md5sum format)")
            digest, name = match.group(1), match.group(3)
            if body.endswith(b"\r") and not escaped:
                # A manifest edited on Windows: the CR is not part of the name.
                name = name[:-1]
        if width and len(digest) != width:
            raise ManifestError(number, f"checksum has {len(digest)} hex digits, "
                                        f"{algorithm} has {width}")
        if escaped:
            name = _unescape(name, number)
        if not name:
            raise ManifestError(number, "empty file name")
        path = normalize_path(os.fsdecode(name))
        entries.append(ManifestEntry(path, digest.decode("ascii").lower()))
    return entries


def format_line(path: str, digest: str, binary: bool = False) -> bytes:
    """One line as coreutils writes it (including the leading backslash)."""
    escaped, name = _escape(os.fsencode(path))
    marker = b"*" if binary else b" "
    return (b"\\" if escaped else b"") + digest.encode("ascii") + b" " + marker + name + b"\n"


def format_manifest(entries: Iterable[ManifestEntry], binary: bool = False) -> bytes:
    return b"".join(format_line(e.path, e.digest, binary) for e in entries)
