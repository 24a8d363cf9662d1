"""Producer checksum files, as producers really write them (pure: no I/O).

Sequencing platforms, pipelines and repositories deliver data with checksum
files.  This module reads them and turns their names into paths inside a copy;
reading the files from storage and merging them into a dataset's reference is
``reference.py``'s job.

Formats
-------
``coreutils`` (``md5sum``, ``sha256sum``, ... and ``md5 -r``, ``shasum``,
``openssl dgst -r``): ``<hex> <name>`` lines, read as GNU ``md5sum -c`` reads
them: after the digest one blank (space or tab), then an optional `` `` or ``*``
marker, then the name; so ``hex name``, ``hex  name`` and ``hex *name`` all work,
and a name that starts with a space (``md5sum`` writes ``hex   name``) survives.
When a name holds a backslash, newline or CR the line starts with ``\\`` and the
name is escaped (``\\\\``, ``\\n``, ``\\r``).  BSD tag lines ``MD5 (name) = hex``
(``--tag``, macOS ``md5``) carry their own algorithm.  Also accepted: a UTF-8
byte-order mark, CRLF line ends, ``#`` comments, blank lines, upper-case hex.

``sidecar``: ``X.md5`` beside ``X`` holds ``X``'s digest, alone (``awk '{printf
$1}'``, EGA) or followed by a name (``md5sum X > X.md5``).

Other tools' formats (hashdeep, Windows FCIV) are refused with a line that says
which format was recognised, never misread.

Names are bytes in the file, decoded with ``os.fsdecode`` rules so names that
are not UTF-8 survive.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

#: Algorithms a manifest may use (threetwoone's names; ``xxh128`` in an inventory
#: is ``xxh3_128``).
ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "xxh3_128")
HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96,
               "sha512": 128, "xxh3_128": 32}
#: BSD tag names (``--tag``; coreutils' ``cksum`` writes ``SHA2-256``).
_TAG_NAMES = {"MD5": "md5", "SHA1": "sha1", "SHA224": "sha224", "SHA256": "sha256",
              "SHA384": "sha384", "SHA512": "sha512", "SHA2-224": "sha224",
              "SHA2-256": "sha256", "SHA2-384": "sha384", "SHA2-512": "sha512",
              "XXH128": "xxh3_128", "XXH3_128": "xxh3_128"}
_TAG_LINE = re.compile(rb"^(\\?)([A-Za-z0-9_-]+) \((.*)\) ?= ?([0-9a-fA-F]+)$", re.S)
_PLAIN_LINE = re.compile(rb"^([0-9a-fA-F]+)[ \t][ *]?(.*)$", re.S)
_HEX = re.compile(rb"^[0-9a-fA-F]+$")
BOM = b"\xef\xbb\xbf"


class ManifestError(ValueError):
    """A manifest that cannot be read as a whole; ``line`` is 1-based, or 0 when
    the problem is the file as a whole."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.reason = message
        super().__init__(f"line {line}: {message}" if line else message)


class PathOutside(ValueError):
    """A name that leaves the copy, or that is absolute without ``strip:``."""


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One line: ``path`` is the name as written (decoded, not yet resolved)."""

    path: str
    digest: str
    algorithm: str = "md5"
    line: int = 0


# -- coreutils ---------------------------------------------------------------------

def lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(number, line) without BOM, line end or CR; blank and ``#`` lines dropped."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        # A CR before the LF is a line end (a manifest written on Windows); a CR
        # inside a name is always escaped (``\\r``), so it is never the name's.
        line = raw[:-1] if raw.endswith(b"\r") else raw
        stripped = line.strip()
        if not stripped or stripped.startswith(b"#"):
            continue
        yield number, line


def foreign_format(data: bytes) -> str | None:
    """The name of a checksum format we recognise but do not read, or None."""
    head = data[len(BOM):] if data.startswith(BOM) else data
    head = head.lstrip()[:512]
    if head.startswith(b"%%%% HASHDEEP") or head.startswith(b"%%%% size,"):
        return ("hashdeep output (a '%%%% HASHDEEP' header and size,hash,...,filename "
                "lines); write the manifest with md5sum/sha256sum instead, or use "
                "hashdeep's own audit mode")
    if head.startswith((b"//", b"<FCIV>", b"<?xml")):
        return ("Windows File Checksum Integrity Verifier (FCIV) output ('//' comment "
                "lines or FCIV XML); write the manifest with md5sum/sha256sum (or "
                "PowerShell Get-FileHash) in 'HEX  NAME' lines instead")
    return None


def parse(data: bytes, algorithm: str = "md5") -> list[ManifestEntry]:
    """Parse a coreutils-format manifest.  ``algorithm`` applies to untagged
    lines; BSD tag lines carry their own.  Raise ManifestError on the first line
    that is not a checksum line, naming the line."""
    foreign = foreign_format(data)
    if foreign:
        raise ManifestError(0, f"not a coreutils checksum file: looks like {foreign}")
    entries: list[ManifestEntry] = []
    for number, line in lines(data):
        entries.append(_parse_line(number, line, algorithm))
    return entries


def _parse_line(number: int, line: bytes, algorithm: str) -> ManifestEntry:
    escaped = line.startswith(b"\\")
    body = line[1:] if escaped else line
    tag = _TAG_LINE.match(line)
    if tag and tag.group(2).decode("ascii").upper() in _TAG_NAMES:
        line_algorithm = _TAG_NAMES[tag.group(2).decode("ascii").upper()]
        escaped = bool(tag.group(1))
        name, digest = tag.group(3), tag.group(4)
    else:
        match = _PLAIN_LINE.match(body)
        if not match and tag:
            raise ManifestError(number, f"unsupported algorithm {tag.group(2).decode()!r} "
                                        f"(supported: {', '.join(sorted(_TAG_NAMES))})")
        if not match:
            raise ManifestError(number, "not '<checksum>  <name>' (md5sum format)")
        digest, name = match.group(1), match.group(2)
        line_algorithm = algorithm
    width = HEX_LENGTHS.get(line_algorithm)
    if width and len(digest) != width:
        hint = [a for a, w in HEX_LENGTHS.items() if w == len(digest) and a != "xxh3_128"]
        raise ManifestError(number, f"checksum has {len(digest)} hex digits, "
                                    f"{line_algorithm} has {width}"
                            + (f" (a {hint[0]} manifest? set 'algorithm: {hint[0]}')"
                               if hint else ""))
    if escaped:
        name = _unescape(name, number)
    if not name:
        raise ManifestError(number, "empty file name")
    return ManifestEntry(os.fsdecode(name), digest.decode("ascii").lower(),
                         line_algorithm, number)


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


def format_line(path: str, digest: str, binary: bool = False) -> bytes:
    """One line as coreutils writes it (including the leading backslash)."""
    escaped, name = _escape(os.fsencode(path))
    marker = b"*" if binary else b" "
    return (b"\\" if escaped else b"") + digest.encode("ascii") + b" " + marker + name + b"\n"


def format_manifest(entries: Iterable[ManifestEntry], binary: bool = False) -> bytes:
    return b"".join(format_line(e.path, e.digest, binary) for e in entries)


# -- sidecar -----------------------------------------------------------------------

def sidecar_target(sidecar_path: str) -> str:
    """``x.fastq.gz.md5`` -> ``x.fastq.gz``: the file a sidecar describes."""
    folder, _, name = sidecar_path.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else ""
    if not stem:
        raise ManifestError(0, f"sidecar {name!r} has no extension to remove: cannot "
                               "tell which file it describes")
    return f"{folder}/{stem}" if folder else stem


def parse_sidecar(data: bytes, sidecar_path: str, algorithm: str = "md5"
                  ) -> ManifestEntry:
    """The one digest of a sidecar file, as an entry for the file it describes
    (a path relative to the same root as ``sidecar_path``)."""
    target = sidecar_target(sidecar_path)
    found = list(lines(data))
    if len(found) != 1:
        raise ManifestError(0, "a sidecar holds one checksum (optionally followed by the "
                               f"file's name); this one has {len(found)} lines")
    number, line = found[0]
    token = line.split(None, 1)
    if not token or not _HEX.match(token[0]):
        entry = _parse_line(number, line, algorithm)  # BSD tag form, or a clear error
    elif len(token) == 1:
        entry = ManifestEntry("", token[0].decode("ascii").lower(), algorithm, number)
        width = HEX_LENGTHS[algorithm]
        if len(entry.digest) != width:
            raise ManifestError(number, f"checksum has {len(entry.digest)} hex digits, "
                                        f"{algorithm} has {width}")
    else:
        entry = _parse_line(number, line, algorithm)
    if entry.path:
        named = entry.path.replace("\\", "/").rsplit("/", 1)[-1]
        if named != target.rsplit("/", 1)[-1]:
            raise ManifestError(number, f"names {entry.path!r}, but a sidecar describes "
                                        f"the file beside it ({target.rsplit('/', 1)[-1]!r})")
    return ManifestEntry(target, entry.digest, entry.algorithm, number)


# -- names to paths in the copy -----------------------------------------------------

def split_path(path: str) -> list[str]:
    """``./a//b/`` -> ``['a', 'b']`` (``..`` kept: resolve handles it)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve(name: str, base: str = "", strip: str | None = None) -> str:
    """The path inside the copy that manifest name ``name`` means.

    ``base`` is the folder names are relative to (the manifest's own folder, the
    copy root ``""``, or a folder given by ``paths:``); ``strip`` a leading
    prefix to remove first.  An absolute name (after ``strip``) or one whose
    ``..`` climbs out of the copy raises PathOutside: never silently rewritten."""
    if strip:
        prefix = split_path(strip)
        parts = split_path(name)
        if strip.startswith("/") != name.startswith("/"):
            pass  # the prefix cannot match; fall through to the checks below
        elif parts[:len(prefix)] == prefix and len(parts) > len(prefix):
            name = "/".join(parts[len(prefix):])
    if name.startswith("/"):
        raise PathOutside(f"absolute name {name!r} (remove its prefix with 'strip:')")
    parts = split_path(base) + split_path(name)
    out: list[str] = []
    for part in parts:
        if part == "..":
            if not out:
                raise PathOutside(f"name {name!r} leaves the copy")
            out.pop()
        else:
            out.append(part)
    if not out:
        raise PathOutside(f"name {name!r} names the copy's root, not a file")
    return "/".join(out)


# -- several manifests, one set of expected digests -----------------------------------

@dataclass(frozen=True, slots=True)
class Origin:
    """Where an expected digest came from: manifest path (in the copy) and line."""

    manifest: str
    line: int

    def __str__(self) -> str:
        return f"{self.manifest}:{self.line}" if self.line else self.manifest


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two entries for one file with different digests."""

    path: str
    algorithm: str
    first: tuple[str, Origin]
    second: tuple[str, Origin]

    def __str__(self) -> str:
        return (f"{self.path}: {self.algorithm} {self.first[0]} ({self.first[1]}) but "
                f"{self.second[0]} ({self.second[1]})")


@dataclass
class ManifestSet:
    """Expected digests merged from every manifest of a dataset.

    Every file may be named by several manifests (and algorithms); the digests
    must agree, else the pair is a :class:`Conflict` and the reference is not
    usable: a contradictory manifest must never pass (``md5sum -c`` fails it too).
    A manifest's entry for itself is ignored (``find . -exec md5sum {} +`` lists
    the manifest it is writing)."""

    #: path -> algorithm -> digest
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    #: Manifests read (paths in the copy); they are dataset files too.
    manifests: list[str] = field(default_factory=list)
    #: Entries that named the manifest itself (ignored).
    self_entries: int = 0

    def add(self, manifest: str, path: str, algorithm: str, digest: str,
            line: int = 0) -> None:
        if path == manifest:
            self.self_entries += 1
            return
        origin = Origin(manifest, line)
        digests = self.files.setdefault(path, {})
        known = digests.get(algorithm)
        if known is None:
            digests[algorithm] = digest
            self.origins.setdefault(path, origin)
        elif known != digest:
            first = self.origins.get(path, origin)
            self.conflicts.append(Conflict(path, algorithm, (known, first), (digest, origin)))

    def __len__(self) -> int:
        return len(self.files)
