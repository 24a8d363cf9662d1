"""BagIt bags (RFC 8493, and the drafts 0.93-0.97 still found in archives).

Pure: the caller hands in the bag's top-level tag files (``read``) and, for the
checks that need it, the copy's listing.  Reading the payload's bytes is the
audit's job: a bag becomes a reference (every ``manifest-ALG.txt`` entry, every
``tagmanifest-ALG.txt`` entry) that each copy is compared with, like any other.

What makes a bag invalid here (each with a reason a person can act on):

* ``bagit.txt`` absent, with a byte-order mark, or not exactly
  ``BagIt-Version: M.N`` and ``Tag-File-Character-Encoding: ENC`` (no blank
  before the colon); an unknown version or encoding;
* no payload manifest; a manifest line that is not ``CHECKSUM FILEPATH``; a
  path that leaves the bag (``..``, absolute, ``~``) or, in a payload manifest,
  lies outside ``data/``; one file listed twice with different digests (twice
  with the same digest too, from version 1.0 on);
* payload manifests that do not all list the same files (RFC 8493 §3: every
  payload file in every payload manifest);
* a ``fetch.txt`` line that is malformed, leaves ``data/``, or names a file no
  manifest lists;
* against a listing: a payload file no manifest lists; ``Payload-Oxum``
  (octets.files of the payload) that does not match.

A file listed in ``fetch.txt`` and absent is not a defect of the bag but of the
copy: it is ``incomplete`` (a "holey" bag, still to be fetched).

File names in manifests and ``fetch.txt`` are percent-decoded: ``%0A``, ``%0D``
always, ``%25`` from version 1.0 on (earlier drafts did not encode ``%``, and
bags written by them hold names with a literal ``%25``).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .manifest import HEX_LENGTHS, ManifestSet
from .words import plural

#: BagIt algorithm names -> threetwoone's (the same for these).
BAG_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
_MANIFEST = re.compile(r"^(tag)?manifest-([a-z0-9]+)\.txt$")
_VERSION = re.compile(r"^(\d+)\.(\d+)$")
_PERCENT = re.compile(r"%(0[aAdD]|25)")
_PERCENT_OLD = re.compile(r"%(0[aAdD])")
#: Earliest and latest versions read.
OLDEST, NEWEST = (0, 93), (1, 99)

#: Reads a top-level file of the bag; None when it does not exist.
Reader = Callable[[str], bytes | None]


class BagInvalid(ValueError):
    """The bag breaks the format; ``reasons`` says every way it does."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass
class Bag:
    """What a bag declares: its version, encoding and expected digests."""

    version: tuple[int, int]
    encoding: str
    #: Every manifest and tag manifest entry, merged (paths relative to the bag).
    expected: ManifestSet
    #: data/... -> {algorithm: digest}, from the payload manifests.
    payload: dict[str, dict[str, str]]
    #: tag file -> {algorithm: digest}, from the tag manifests.
    tags: dict[str, dict[str, str]]
    #: The manifest files themselves (payload and tag).
    manifest_files: list[str]
    #: (octets, files) from Payload-Oxum, if the bag declares it.
    oxum: tuple[int, int] | None
    #: data/... -> (url, length or None) from fetch.txt.
    fetch: dict[str, tuple[str, int | None]]
    warnings: list[str] = field(default_factory=list)

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


# -- reading -------------------------------------------------------------------------

def read_bag(top_files: Iterable[str], read: Reader) -> Bag:
    """Parse a bag from its top-level files (names, no folders) and ``read``.
    Raise BagInvalid with every reason found."""
    reasons: list[str] = []
    warnings: list[str] = []
    version, encoding = _bagit_txt(read("bagit.txt"), reasons)
    if version is None or encoding is None:
        raise BagInvalid(reasons)
    names = sorted(set(top_files))
    payload_manifests: list[tuple[str, str]] = []
    tag_manifests: list[tuple[str, str]] = []
    for name in names:
        match = _MANIFEST.match(name)
        if not match:
            continue
        algorithm = match.group(2)
        if algorithm not in BAG_ALGORITHMS:
            warnings.append(f"{name}: algorithm {algorithm!r} is not supported; not checked")
            continue
        (tag_manifests if match.group(1) else payload_manifests).append((name, algorithm))
    if not payload_manifests:
        reasons.append("no payload manifest (manifest-ALG.txt with ALG one of "
                       f"{', '.join(BAG_ALGORITHMS)})")
    expected = ManifestSet()
    payload: dict[str, dict[str, str]] = {}
    tags: dict[str, dict[str, str]] = {}
    listed_by: dict[str, set[str]] = {}
    for name, algorithm in payload_manifests + tag_manifests:
        data = read(name)
        if data is None:
            reasons.append(f"{name} could not be read")
            continue
        is_payload = not name.startswith("tag")
        expected.manifests.append(name)
        seen: dict[str, str] = {}
        for number, digest, path in _manifest_lines(data, name, algorithm, encoding,
                                                    version, reasons, warnings):
            if is_payload and not path.startswith("data/"):
                reasons.append(f"{name} line {number}: {path!r} is not in the payload "
                               "folder data/")
                continue
            if path in seen:
                if seen[path] != digest:
                    reasons.append(f"{name} lists {path!r} twice with different "
                                   f"checksums ({seen[path]}, {digest})")
                elif version >= (1, 0):
                    reasons.append(f"{name} lists {path!r} twice (BagIt 1.0: each "
                                   "file exactly once)")
                else:
                    warnings.append(f"{name} lists {path!r} twice with the same checksum")
                continue
            seen[path] = digest
            expected.add(name, path, algorithm, digest, number)
            (payload if is_payload else tags).setdefault(path, {})[algorithm] = digest
        if is_payload:
            listed_by[name] = set(seen)
    if len(listed_by) > 1:
        union = set().union(*listed_by.values())
        for name, listed in sorted(listed_by.items()):
            absent = sorted(union - listed)
            if absent:
                reasons.append(f"{name} does not list {plural(len(absent), 'payload file')} other "
                               f"manifests list (e.g. {absent[0]!r}); every payload "
                               "manifest must list every payload file")
    info_name = "package-info.txt" if version <= (0, 95) else "bag-info.txt"
    oxum = _oxum(read(info_name), info_name, encoding, reasons, warnings)
    fetch = _fetch(read("fetch.txt"), encoding, version, payload, reasons)
    if reasons:
        raise BagInvalid(reasons)
    return Bag(version, encoding, expected, payload, tags,
               [n for n, _ in payload_manifests + tag_manifests], oxum, fetch, warnings)


def _bagit_txt(data: bytes | None, reasons: list[str]
               ) -> tuple[tuple[int, int] | None, str | None]:
    if data is None:
        reasons.append("bagit.txt is missing: not a bag")
        return None, None
    if data.startswith(codecs.BOM_UTF8):
        reasons.append("bagit.txt starts with a byte-order mark (RFC 8493: it must not)")
        return None, None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        reasons.append("bagit.txt is not UTF-8")
        return None, None
    rows = [r for r in re.split(r"\r\n|\r|\n", text) if r.strip()]
    found: dict[str, str] = {}
    for row in rows:
        label, colon, value = row.partition(":")
        if not colon or label != label.strip() or not value.startswith(" "):
            reasons.append(f"bagit.txt: line {row!r} is not 'Label: value' (no blank "
                           "before the colon, one after it)")
            return None, None
        found[label] = value.strip()
    version_text = found.get("BagIt-Version")
    encoding = found.get("Tag-File-Character-Encoding")
    if version_text is None or encoding is None:
        absent = [k for k in ("BagIt-Version", "Tag-File-Character-Encoding")
                  if k not in found]
        reasons.append(f"bagit.txt lacks {' and '.join(absent)}")
        return None, None
    match = _VERSION.match(version_text)
    if not match:
        reasons.append(f"bagit.txt: BagIt-Version {version_text!r} is not M.N")
        return None, None
    version = (int(match.group(1)), int(match.group(2)))
    if not OLDEST <= version <= NEWEST:
        reasons.append(f"bagit.txt: BagIt-Version {version_text} is not supported "
                       "(0.93 to 1.x)")
        return None, None
    try:
        codecs.lookup(encoding)
    except LookupError:
        reasons.append(f"bagit.txt: unknown Tag-File-Character-Encoding {encoding!r}")
        return None, None
    return version, encoding


def _text(data: bytes, name: str, encoding: str, reasons: list[str]) -> str | None:
    """A tag file's text without a byte-order mark, or None (with the reason)
    when it is not in the bag's encoding.  Names keep undecodable UTF-8 bytes
    (surrogateescape, as paths do)."""
    try:
        codec = codecs.lookup(encoding).name
        errors = "surrogateescape" if codec == "utf-8" else "strict"
        text = data.decode(codec, errors)
    except (UnicodeDecodeError, LookupError) as exc:
        reasons.append(f"{name} is not valid {encoding}: {exc}")
        return None
    return text[1:] if text.startswith("\ufeff") else text


def decode_name(name: str, version: tuple[int, int]) -> str:
    """Percent-decoding of a manifest or fetch.txt file path."""
    pattern = _PERCENT if version >= (1, 0) else _PERCENT_OLD
    return pattern.sub(lambda m: chr(int(m.group(1), 16)), name)


def _bag_path(raw: str, version: tuple[int, int]) -> tuple[str | None, str | None, bool]:
    """(path, problem, had leading ./) for a file path as a bag writes it."""
    name = decode_name(raw, version)
    if name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name) or name.startswith("\\\\"):
        return None, f"absolute path {raw!r} leaves the bag", False
    if name.startswith("~"):
        return None, f"path {raw!r} starts with '~' (a home folder shortcut)", False
    dotted = name.startswith("./")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, f"path {raw!r} leaves the bag ('..')", False
    if not parts:
        return None, f"path {raw!r} names no file", False
    return "/".join(parts), None, dotted


def _manifest_lines(data: bytes, name: str, algorithm: str, encoding: str,
                    version: tuple[int, int], reasons: list[str], warnings: list[str]
                    ) -> Iterable[tuple[int, str, str]]:
    text = _text(data, name, encoding, reasons)
    if text is None:
        return
    width = HEX_LENGTHS[algorithm]
    starred = dotted = 0
    for number, row in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not row.strip() or row.lstrip().startswith("#"):
            continue
        fields = row.split(None, 1)
        if len(fields) != 2 or not re.fullmatch(r"[0-9a-fA-F]+", fields[0]):
            reasons.append(f"{name} line {number}: not 'CHECKSUM FILEPATH'")
            continue
        digest, raw = fields[0].lower(), fields[1]
        if len(digest) != width:
            reasons.append(f"{name} line {number}: checksum has {len(digest)} hex digits, "
                           f"{algorithm} has {width}")
            continue
        if raw.startswith("*"):
            starred += 1
            raw = raw[1:]
        path, problem, had_dot = _bag_path(raw, version)
        if path is None:
            reasons.append(f"{name} line {number}: {problem}")
            continue
        dotted += had_dot
        yield number, digest, path
    if starred:
        warnings.append(f"{name}: {plural(starred, 'name')} "
                        f"{'starts' if starred == 1 else 'start'} with '*' (md5sum's binary "
                        "marker, not part of a BagIt file path); read without it")
    if dotted:
        warnings.append(f"{name}: {plural(dotted, 'path')} "
                        f"{'starts' if dotted == 1 else 'start'} with './'; read without it")


def parse_tags(text: str) -> list[tuple[str, str]]:
    """A tag file (bag-info.txt): ``Label: value`` lines; a line starting with a
    blank continues the value before it.  Lenient about blanks around the colon
    (bags in the wild write ``Label : value``)."""
    out: list[tuple[str, str]] = []
    for row in re.split(r"\r\n|\r|\n", text):
        if not row.strip():
            continue
        if row[0] in " \t" and out:
            label, value = out[-1]
            out[-1] = (label, value + " " + row.strip())
            continue
        label, colon, value = row.partition(":")
        if not colon:
            raise ValueError(f"line {row!r} is not 'Label: value'")
        out.append((label.strip(), value.strip()))
    return out


def _oxum(data: bytes | None, name: str, encoding: str, reasons: list[str],
          warnings: list[str]) -> tuple[int, int] | None:
    text = None if data is None else _text(data, name, encoding, reasons)
    if text is None:
        return None
    try:
        tags = parse_tags(text)
    except ValueError as exc:
        reasons.append(f"{name}: {exc}")
        return None
    values = [v for k, v in tags if k.lower() == "payload-oxum"]
    if not values:
        return None
    if len(set(values)) > 1:
        reasons.append(f"{name} declares Payload-Oxum {len(values)} times, differently")
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)", values[0])
    if not match:
        reasons.append(f"{name}: Payload-Oxum {values[0]!r} is not OCTETS.FILES")
        return None
    if len(values) > 1:
        warnings.append(f"{name} declares Payload-Oxum {len(values)} times")
    return int(match.group(1)), int(match.group(2))


def _fetch(data: bytes | None, encoding: str, version: tuple[int, int],
           payload: dict[str, dict[str, str]], reasons: list[str]
           ) -> dict[str, tuple[str, int | None]]:
    out: dict[str, tuple[str, int | None]] = {}
    text = None if data is None else _text(data, "fetch.txt", encoding, reasons)
    if text is None:
        return out
    from urllib.parse import urlsplit  # only bags with a fetch.txt pay for it

    for number, row in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not row.strip():
            continue
        fields = row.split(None, 2)
        if len(fields) != 3 or not (fields[1] == "-" or fields[1].isdigit()):
            reasons.append(f"fetch.txt line {number}: not 'URL LENGTH FILEPATH'")
            continue
        url, length, raw = fields
        parts = urlsplit(url)
        if not parts.scheme or not (parts.netloc or parts.scheme == "file"):
            reasons.append(f"fetch.txt line {number}: {url!r} is not a URL")
            continue
        path, problem, _dotted = _bag_path(raw.strip(), version)
        if path is None:
            reasons.append(f"fetch.txt line {number}: {problem}")
            continue
        if not path.startswith("data/"):
            reasons.append(f"fetch.txt line {number}: {path!r} is not in the payload "
                           "folder data/")
            continue
        if payload and path not in payload:
            reasons.append(f"fetch.txt line {number}: {path!r} is in no payload manifest")
            continue
        out[path] = (url, None if length == "-" else int(length))
    return out


# -- checking a copy's listing against the bag ----------------------------------------

@dataclass
class PayloadCheck:
    """What a copy's listing says about the bag."""

    #: Payload files no manifest lists: the bag (this copy) is invalid.
    extra: list[str] = field(default_factory=list)
    #: Payload files listed in fetch.txt and absent: a holey bag (incomplete).
    unfetched: list[str] = field(default_factory=list)
    #: Why the payload breaks the bag (extra files, Payload-Oxum).
    reasons: list[str] = field(default_factory=list)
    #: path -> why a listed file cannot be there (case or Unicode variants).
    hints: dict[str, str] = field(default_factory=dict)


def check_payload(bag: Bag, listing: Iterable[tuple[str, int]]) -> PayloadCheck:
    """Compare the files of a copy (path, size) with what the bag declares."""
    check = PayloadCheck()
    octets = files = 0
    present: set[str] = set()
    for path, size in listing:
        if not path.startswith("data/"):
            continue
        files += 1
        octets += size
        present.add(path)
        if path not in bag.payload:
            check.extra.append(path)
    check.extra.sort()
    if check.extra:
        check.reasons.append(f"{plural(len(check.extra), 'payload file')} in no manifest "
                             f"(e.g. {check.extra[0]!r})")
    absent = sorted(p for p in bag.payload if p not in present)
    check.unfetched = [p for p in absent if p in bag.fetch]
    # Absent or extra files say more than the Oxum would (and explain it).
    if bag.oxum and not absent and not check.extra and bag.oxum != (octets, files):
        check.reasons.append(f"Payload-Oxum says {bag.oxum[0]}.{bag.oxum[1]} "
                             f"(octets.files), the payload is {octets}.{files}")
    check.hints = _hints(absent, present)
    return check


#: Files that copies and version control often drop (and Windows/macOS make).
_SYSTEM_FILES = {".DS_Store": "macOS Finder metadata", "Thumbs.db": "Windows thumbnails",
                 "desktop.ini": "Windows folder settings", "._": "macOS resource fork"}


def _hints(absent: list[str], present: set[str]) -> dict[str, str]:
    """Why a listed file may be absent, when a Linux file system explains it."""
    if not absent:
        return {}
    by_fold = {p.casefold(): p for p in present}
    by_norm = {unicodedata.normalize("NFC", p): p for p in present}
    hints = {}
    for path in absent:
        name = path.rsplit("/", 1)[-1]
        other = by_norm.get(unicodedata.normalize("NFC", path))
        if other is not None and other != path:
            hints[path] = (f"the same name as {other!r} in another Unicode normalisation "
                           "(NFC/NFD): a file system that normalises names (macOS) "
                           "wrote the bag; on Linux they are two names and only one exists")
            continue
        other = by_fold.get(path.casefold())
        if other is not None and other != path:
            hints[path] = (f"differs from {other!r} only in letter case: a "
                           "case-insensitive file system wrote the bag; on Linux "
                           "only one of the two exists")
            continue
        for prefix, what in _SYSTEM_FILES.items():
            if name == prefix or (prefix == "._" and name.startswith(prefix)):
                hints[path] = (f"{what} ({name}): system files like it are often "
                               "dropped when a bag is copied")
    return hints
