"""A dataset's reference from its producer manifests.

The inventory's ``checksums:`` entries name manifests in the primary copy (a
file, every file a glob matches, sidecars, or the copy as a BagIt bag).  This
module finds them in the primary's listing, reads them through the backend,
turns every name into a path inside the copy, and merges all of it into one set
of expected digests, or says why that cannot be done:

* ``problems``: the manifests could not be read or parsed, or a glob matched
  nothing: there is no reference (each copy ``error``, the dataset ``unknown``);
* ``invalid``: the manifests contradict themselves (two digests for one file),
  name a file outside the copy, or the primary is not a valid bag: the dataset
  fails (violation ``reference``), whatever the copies hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from . import bag as bagit
from . import manifest, pathglob
from .inventory import ChecksumsSpec
from .manifest import ManifestError, ManifestSet, PathOutside
from .pathnames import display
from .words import plural

#: Reads a file of the primary copy (a path relative to its root).  Raises
#: OSError or a BackendError when it cannot.
Reader = Callable[[str], bytes]
#: The primary's regular files: (path, size).  Raises what the walk raises.
Lister = Callable[[], Iterable[tuple[str, int]]]

#: At most this many problems of one kind are spelled out.
_SHOWN = 5


@dataclass
class ManifestRead:
    expected: ManifestSet = field(default_factory=ManifestSet)
    problems: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The bag, when ``format: bagit``: each copy is checked as one.
    bag: bagit.Bag | None = None

    @property
    def usable(self) -> bool:
        return not self.problems and not self.invalid

    @property
    def unlisted_manifests(self) -> frozenset[str]:
        """Manifests no manifest lists (a bag's tag manifests, a checksum file
        of its own folder): not compared as dataset files yet."""
        return frozenset(m for m in self.expected.manifests if m not in self.expected.files)


class ReadFailed(Exception):
    """A manifest could not be read from storage (the message says why)."""


def read_manifests(specs: Sequence[ChecksumsSpec], lister: Lister,
                   reader: Reader) -> ManifestRead:
    """Read every manifest ``specs`` name in the primary copy into one set."""
    out = ManifestRead()
    listing: list[tuple[str, int]] | None = None
    if any(s.glob or s.format == "bagit" for s in specs):
        try:
            listing = list(lister())
        except ReadFailed as exc:
            out.problems.append(f"the primary copy could not be listed to find its "
                                f"manifests: {exc}")
            return out
    for spec in specs:
        if spec.format == "bagit":
            assert listing is not None
            _read_bag(listing, reader, out)
            continue
        if spec.file:
            paths = [spec.file]
        else:
            assert spec.glob is not None and listing is not None
            matcher = pathglob.compile_glob(spec.glob)
            paths = sorted(p for p, _size in listing if matcher.match(p))
            if not paths:
                out.problems.append(f"checksums glob {spec.glob!r} matches no file in the "
                                    "primary copy: no reference to compare the copies with")
                continue
        for path in paths:
            _read_one(spec, path, reader, out)
    if out.expected.conflicts:
        conflicts = out.expected.conflicts
        shown = "; ".join(display(str(c)) for c in conflicts[:_SHOWN])
        more = f" (and {len(conflicts) - _SHOWN} more)" if len(conflicts) > _SHOWN else ""
        out.invalid.append(f"the producer manifests give {plural(len(conflicts), 'file')} two "
                           f"different checksums: {shown}{more}")
    if out.expected.self_entries:
        out.notes.append(f"{out.expected.self_entries} manifest entry(ies) naming its own "
                         "manifest ignored (a checksum file cannot hold its own checksum)")
    if not out.problems and not out.invalid and not out.expected.files:
        out.problems.append("the producer manifests list no files")
    return out


def _read_one(spec: ChecksumsSpec, path: str, reader: Reader, out: ManifestRead) -> None:
    try:
        data = reader(path)
    except ReadFailed as exc:
        out.problems.append(f"producer manifest {display(path)} could not be read: {exc}")
        return
    out.expected.manifests.append(path)
    try:
        if spec.format == "sidecar":
            entries = [manifest.parse_sidecar(data, path, spec.algorithm)]
        else:
            entries = manifest.parse(data, spec.algorithm)
    except ManifestError as exc:
        out.problems.append(f"producer manifest {display(path)}: {exc}")
        return
    base = {"manifest": path.rpartition("/")[0], "dataset": ""}.get(spec.paths, spec.paths)
    outside = []
    for entry in entries:
        try:
            target = (entry.path if spec.format == "sidecar"
                      else manifest.resolve(entry.path, base, spec.strip))
        except PathOutside as exc:
            outside.append(f"line {entry.line}: {exc}")
            continue
        out.expected.add(path, target, entry.algorithm, entry.digest, entry.line)
    if outside:
        more = f" (and {len(outside) - _SHOWN} more)" if len(outside) > _SHOWN else ""
        out.invalid.append(f"producer manifest {display(path)} names files outside the "
                           f"copy: {display('; '.join(outside[:_SHOWN]))}{more}")


def _read_bag(listing: list[tuple[str, int]], reader: Reader, out: ManifestRead) -> None:
    top = [p for p, _size in listing if "/" not in p]
    unreadable: list[str] = []

    def read(name: str) -> bytes | None:
        if name not in top:
            return None
        try:
            return reader(name)
        except ReadFailed as exc:
            unreadable.append(f"{name} could not be read: {exc}")
            return None

    try:
        bag = bagit.read_bag(top, read)
    except bagit.BagInvalid as exc:
        if unreadable:
            out.problems.extend(unreadable)
        else:
            out.invalid.append("the primary copy is not a valid BagIt bag: "
                               + display("; ".join(exc.reasons)))
        return
    if unreadable:
        out.problems.extend(unreadable)
        return
    check = bagit.check_payload(bag, listing)
    if check.reasons:
        out.invalid.append("the primary copy is not a valid BagIt bag: "
                           + display("; ".join(check.reasons)))
        return
    out.bag = bag
    out.expected = bag.expected
    out.notes.extend(f"BagIt: {display(w)}" for w in bag.warnings)
