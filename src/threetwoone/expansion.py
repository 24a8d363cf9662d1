"""Turn ``collections:`` into datasets by listing their locations.

Each folder matching a collection's glob becomes a dataset named
``<collection>/<match>`` whose primary copy is that folder and whose other
copies are the collection's templates filled in.  Datasets an earlier audit
found (remembered in the catalog, see memory.py) are never silently lost:

* found again: audited as usual;
* its folder gone from a complete listing: audited with the violation
  ``dataset-gone`` (the dataset fails) until ``threetwoone forget``;
* the listing could not be made in full (location unreachable, a folder
  unreadable): audited as usual, so its copies say what they can, and the
  collection is reported as not listed (the run is at best undetermined).

No folder is claimed twice: a collection dataset's copy at the same place as
another dataset's copy is an invalid inventory (exit 4), naming both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from .backends import Backend, BackendError, EntryKind, LocationUnreachable
from .collection import (
    compiled,
    could_not_list,
    dataset_name,
    fill,
    glob_parts,
    ignored,
    leaves_location,
    literal_prefix,
    unusable_name,
)
from .errors import ConfigError, ConfigErrors
from .inventory import Collection, CopySpec, Dataset, Inventory, Location, copy_address
from .memory import Member
from .pathnames import display

BackendFor = Callable[[Location], Backend]


@dataclass
class CollectionListing:
    """What listing one collection found (the report's ``collections``)."""

    name: str
    location: str
    glob: str
    #: ``listed``, ``incomplete`` (some folder could not be listed) or
    #: ``unreachable`` (the location could not be reached).
    state: str = "listed"
    detail: str | None = None
    #: Matched folder -> dataset name, in name order.
    matches: dict[str, str] = field(default_factory=dict)
    #: Remembered datasets whose folder has gone.
    gone: list[str] = field(default_factory=list)
    #: Remembered datasets not found, but not confirmed gone either (the listing
    #: was incomplete, or their folder is there in some other form).
    unconfirmed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, str | int | None]:
        return {"name": self.name, "location": self.location, "glob": self.glob,
                "datasets": len(self.matches), "gone": len(self.gone),
                "state": self.state, "detail": self.detail}


@dataclass
class Expansion:
    #: The inventory with every collection dataset in ``datasets``.
    inventory: Inventory
    collections: list[CollectionListing] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def members(self, names: Iterable[str]) -> list[tuple[str, str, str, str]]:
        """``(dataset, collection, location, folder)`` of the collection datasets
        among ``names`` whose folder was found this run (to remember them as
        seen; one only remembered from before is not seen again)."""
        wanted = set(names)
        return [(name, listing.name, listing.location, folder)
                for listing in self.collections
                for folder, name in listing.matches.items()
                if name in wanted and name not in listing.unconfirmed]


def expand(inventory: Inventory, backend_for: BackendFor,
           remembered: Mapping[str, Member]) -> Expansion:
    """Every dataset of ``inventory``: declared ones first, then each
    collection's in name order.  Raise ConfigErrors (exit 4) for a folder
    claimed twice or a copy path that leaves its location."""
    if not inventory.collections:
        return Expansion(inventory)
    datasets = dict(inventory.datasets)
    out = Expansion(inventory)
    errors: list[ConfigError] = []
    for collection in inventory.collections.values():
        listing = CollectionListing(collection.name, collection.location, collection.glob)
        out.collections.append(listing)
        location = inventory.locations[collection.location]
        found = _find(collection, location, backend_for, listing, out.warnings)
        for folder in found:
            name = dataset_name(collection.name, collection.glob, display(folder))
            listing.matches[folder] = name
        members = {m.dataset: m for m in remembered.values()
                   if m.collection == collection.name and m.location == collection.location}
        found_names = set(listing.matches.values())
        for name, member in members.items():
            if name in found_names or not _still_matches(collection,
                                                                      member.path):
                continue  # found again, or no longer the collection's (glob changed)
            if listing.state == "listed" and _gone(backend_for, location, member.path):
                listing.gone.append(name)
                datasets[name] = _dataset(inventory, collection, member.path, name, errors,
                                          gone=_gone_detail(collection, member))
            else:
                # Not confirmed gone: audited as usual, so it is never lost silently.
                listing.matches[member.path] = name
                listing.unconfirmed.append(name)
        for folder, name in sorted(listing.matches.items(), key=lambda item: item[1]):
            datasets[name] = _dataset(inventory, collection, folder, name, errors)
        listing.matches = dict(sorted(listing.matches.items(), key=lambda item: item[1]))
        if not listing.matches and not listing.gone and listing.state == "listed":
            out.warnings.append(
                f"collection {collection.name}: glob {collection.glob!r} matches no folder "
                f"on {collection.location}")
    errors.extend(_claimed_twice(inventory, datasets))
    if errors:
        raise ConfigErrors(errors)
    # Gone datasets in name order among the others.
    ordered = dict(inventory.datasets)
    for collection in inventory.collections.values():
        names = sorted(n for n in datasets if datasets[n].collection == collection.name)
        ordered.update((n, datasets[n]) for n in names)
    out.inventory = replace(inventory, datasets=ordered)
    return out


def remembered_datasets(inventory: Inventory, remembered: Mapping[str, Member]) -> Inventory:
    """``inventory`` with the collection datasets audits found, as the catalog
    remembers them, without listing storage (``plan`` touches none): a
    collection dataset is planned like a declared one, never left out as if
    there were nothing to do."""
    if not inventory.collections:
        return inventory
    datasets = dict(inventory.datasets)
    errors: list[ConfigError] = []
    for collection in inventory.collections.values():
        for name, member in sorted(remembered.items()):
            if (member.collection == collection.name
                    and member.location == collection.location
                    and _still_matches(collection, member.path)):
                datasets[name] = _dataset(inventory, collection, member.path, name, errors)
    if errors:
        raise ConfigErrors(errors)
    return replace(inventory, datasets=datasets)


# -- finding the folders ---------------------------------------------------------

def _find(collection: Collection, location: Location, backend_for: BackendFor,
          listing: CollectionListing, warnings: list[str]) -> list[str]:
    """The folders matching the collection's glob, level by level; the
    listing's state and detail say what could not be listed."""
    try:
        backend = backend_for(location)
    except LocationUnreachable as exc:
        listing.state, listing.detail = "unreachable", str(exc)
        return []
    except BackendError as exc:
        listing.state, listing.detail = "incomplete", str(exc)
        return []
    parts = glob_parts(collection.glob)
    # The glob's leading literal folders must be there: an unmounted share (an
    # empty mount point) or one replaced by a symlink is no "matches nothing".
    prefix = len(literal_prefix(collection.glob))
    current = [""]
    problems: list[str] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        following: list[str] = []
        for folder in current:
            try:
                found = backend.list_folder(folder)
            except BackendError as exc:
                problems.append(f"{folder or '/'}: {exc}")
                continue
            if found is not None:
                for name in found.folders:
                    if _matches(part, name):
                        following.append(f"{folder}/{name}" if folder else name)
            if depth < prefix and not following:
                path = f"{folder}/{part}" if folder else part
                problems.append(f"{display(path)}: no such folder (the glob starts in it)")
            if found is None:
                continue
            for entry in found.entries:
                if entry.kind is EntryKind.SYMLINK and _matches(part, entry.path):
                    path = f"{folder}/{entry.path}" if folder else entry.path
                    warnings.append(
                        f"collection {collection.name}: {display(path)} on "
                        f"{collection.location} is a symlink: not followed, not a "
                        + ("dataset" if last else "folder to search"))
        current = following
    matched = [folder for folder in current if not ignored(collection.ignore, folder)]
    # The catalog keys a dataset's copies by their paths as text: a folder name
    # that is not UTF-8 cannot be one dataset.  Never skipped in silence: the
    # collection is incomplete (the run undetermined) until it is renamed or
    # left out with ignore.
    problems += [f"{display(folder)}: the name is not valid UTF-8 (rename the folder, or "
                 "leave it out with the collection's ignore)"
                 for folder in matched if not is_utf8(folder)]
    if problems:
        listing.state = "incomplete"
        listing.detail = could_not_list(problems)
    return [folder for folder in matched if is_utf8(folder)]


def is_utf8(name: str) -> bool:
    """Whether ``name`` (decoded with surrogateescape) was valid UTF-8 bytes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _matches(part: str, name: str) -> bool:
    """A glob part matches a folder name as the shell's would: a leading dot
    must be matched explicitly (``.snapshot`` is nobody's dataset)."""
    if name.startswith(".") and not part.startswith("."):
        return False
    return compiled(part).match(name)


def _still_matches(collection: Collection, folder: str) -> bool:
    parts = glob_parts(collection.glob)
    names = folder.split("/")
    return (len(names) == len(parts)
            and all(_matches(part, name) for part, name in zip(parts, names, strict=True))
            and not ignored(collection.ignore, folder))


def _gone(backend_for: BackendFor, location: Location, folder: str) -> bool:
    """Confirm a remembered folder missing from a complete listing is gone."""
    try:
        return backend_for(location).stat_root(folder) is None
    except BackendError:
        return False  # there in some form, or unknown: audited, never called gone


def _gone_detail(collection: Collection, member: Member) -> str:
    return (f"the primary folder {member.location}:{display(member.path)} of this dataset of "
            f"collection {collection.name} has gone (last audited {member.last_seen}); it "
            "fails until it is forgotten")


# -- the datasets ----------------------------------------------------------------

def _dataset(inventory: Inventory, collection: Collection, folder: str, name: str,
             errors: list[ConfigError], gone: str | None = None) -> Dataset:
    if any(unusable_name(part) for part in folder.split("/")):
        errors.append(_error(inventory, f"collections.{collection.name}.glob", (
            f"the folder {display(folder)} found on {collection.location} is not a usable "
            "path (a '..', '.' or empty part): it would leave the location")))
    copies = [CopySpec(location=collection.location, path=folder, primary=True, index=0)]
    for template in collection.copies:
        path = fill(template.path, folder)
        if leaves_location(path):
            keypath = f"collections.{collection.name}.copies[{template.index - 1}].path"
            errors.append(_error(inventory, keypath, (
                f"for the folder {display(folder)} the path {display(path)} leaves the "
                f"location {template.location} ('..')")))
        copies.append(CopySpec(location=template.location, path=path, primary=False,
                               index=template.index))
    return Dataset(name=name, copies=tuple(copies), **collection.settings(),
                   collection=collection.name, gone=gone)


def _claimed_twice(inventory: Inventory, datasets: Mapping[str, Dataset]
                   ) -> list[ConfigError]:
    """A folder that copies of two datasets claim, one of them a collection's."""
    claims: dict[tuple[str, ...], tuple[Dataset, CopySpec]] = {}
    errors = []
    for dataset in datasets.values():
        for copy in dataset.copies:
            address = copy_address(inventory.locations[copy.location], copy.path)
            first = claims.setdefault(address, (dataset, copy))
            other, other_copy = first
            if other is dataset or (other.collection is None and dataset.collection is None):
                continue
            errors.append(_error(inventory, dataset.keypath, (
                f"the folder {copy.location}:{display(copy.path)} is claimed by dataset "
                f"{dataset.name} ({_source(dataset)}) and by dataset {other.name} "
                f"({_source(other)}, copy {other_copy.location}:{display(other_copy.path)})"
                "; narrow a glob, add the folder to a collection's ignore, or remove "
                "one of them")))
    return errors


def _source(dataset: Dataset) -> str:
    return (f"collection {dataset.collection}" if dataset.collection
            else f"datasets.{dataset.name}")


def _error(inventory: Inventory, keypath: str, message: str) -> ConfigError:
    if inventory.document is not None:
        return inventory.document.error(keypath, message)
    return ConfigError(inventory.path, None, keypath, message)
