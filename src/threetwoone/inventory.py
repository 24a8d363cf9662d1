"""Inventory format version 1: load, validate, resolve (README, "Inventory").

Validation collects every error it can find in one pass, each naming the file,
the line and the YAML key path, so a steward fixes a hand-edited inventory in one
go.  Nothing here touches storage: ``threetwoone validate`` runs only this.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigError, ConfigErrors
from .settingchecks import (
    TEXT_CHECKS,
    Check,
    duration,
    env_name,
    flag,
    mapping,
    string_list,
    text,
)
from .transfer import Transfer, parse_transfer
from .yamlload import Document, join, key_join, load_file, shown

#: Keys that would put a secret in the inventory, and where it belongs instead.
SECRET_KEYS = {
    "password": "password_env (the name of an environment variable holding it)",
    "passphrase": "an ssh-agent, or a key file readable only by you",
    "token": "token_env (the name of an environment variable holding it)",
    "secret": "an environment variable named by a *_env key",
    "secret_key": "the standard AWS credential chain (environment, profile)",
    "aws_secret_access_key": "the standard AWS credential chain (environment, profile)",
    "secret_access_key": "the standard AWS credential chain (environment, profile)",
    "access_key": "the standard AWS credential chain (environment, profile)",
    "aws_access_key_id": "the standard AWS credential chain (environment, profile)",
    "private_key": "identity_file (a path to the key)",
    "macaroon": "token_env (the name of an environment variable holding it)",
}

COMMON_LOCATION_KEYS: dict[str, tuple[Check, bool]] = {
    "kind": (text, True),
    "media": (text, True),
    "site": (text, True),
    "description": (text, False),
    # Policy-library attributes (see policies/): validated here so that an
    # inventory written for a stricter policy is not rejected by a looser one.
    "immutable": (flag, False),
    "offline": (flag, False),
    "offline_max_age": (duration, False),
    "zone": (text, False),
    "repository": (flag, False),
    "sensitive_ok": (flag, False),
}

AUTH_KEYS: dict[str, tuple[Check, bool]] = {
    "type": (text, True),
    "token_env": (env_name, False),
    "username": (text, False),
    "password_env": (env_name, False),
}
AUTH_TYPES = {"none": (), "bearer": ("token_env",), "basic": ("username", "password_env"),
              "cert": ()}

#: Keys whose values are local file paths: ``~`` expands, relative paths resolve
#: against the inventory's folder.
PATH_KEYS = {"identity_file", "known_hosts", "ca_bundle", "cert", "key"}


@dataclass(frozen=True)
class Location:
    name: str
    kind: str
    media: str
    site: str
    #: Every validated key of the location, paths already resolved.
    settings: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None

    @property
    def root(self) -> str:
        """The root of a local or sftp location (resolved for local)."""
        return str(self.settings.get("root", ""))

    def attribute(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)


@dataclass(frozen=True)
class CopySpec:
    location: str
    path: str
    primary: bool
    index: int


def _key_part(name: str) -> str:
    """A dataset or location name as one component of a copy key: ``%`` and
    ``/`` escaped (``%25``, ``%2F``), so the component cannot run into the next."""
    return name.replace("%", "%25").replace("/", "%2F")


def copy_key(dataset: str, copy: CopySpec) -> str:
    """The catalog's name for a copy (TEXT), written by audits and read by
    plans and status (one spelling for all: a plan that spelt it otherwise found
    no copy).  Dataset and location names may hold ``/`` (a collection's
    datasets are ``<collection>/<match>``), so both are escaped: unescaped,
    dataset ``a`` on ``x`` at ``b/p`` and dataset ``a/x`` on ``b`` at ``p`` were
    one key, and one copy's verified rows were read for the other.  The path is
    the last component and stays as written; names without ``/`` or ``%`` keep
    the key they always had."""
    return f"{_key_part(dataset)}/{_key_part(copy.location)}/{copy.path.strip('/')}"


def copy_address(location: Location, path: str) -> tuple[str, ...]:
    """Where a copy is, from the inventory alone (no I/O): the storage its
    location's settings address and the copy's path below it, normalised.  Two
    copies at one address are one copy, reachable or not.  (Storage reached by
    two addresses, through a symlink or a bind mount, is found by the backend's
    storage identity when reachable.)"""
    below = path.strip("/")
    settings = location.settings
    if location.kind == "local":
        return ("local", os.path.normpath(os.path.join(location.root, below)))
    if location.kind == "sftp":
        return ("sftp", str(settings.get("host", "")).casefold(),
                str(settings.get("port", 22)),
                posixpath.normpath(posixpath.join(str(settings.get("root", "")), below)))
    if location.kind == "webdav":
        from urllib.parse import urlsplit

        url = urlsplit(str(settings.get("url", "")))
        return ("webdav", url.scheme.casefold(), url.netloc.casefold(),
                posixpath.normpath(posixpath.join("/" + url.path.strip("/"), below)))
    return (location.kind, str(settings.get("endpoint_url", "")),
            str(settings.get("bucket", "")),
            posixpath.normpath(posixpath.join("/" + str(settings.get("prefix", "")), below)))


@dataclass(frozen=True)
class ChecksumsSpec:
    """One ``checksums:`` entry: producer manifests inside the primary copy.

    Exactly one of ``file`` and ``glob`` names them, except for ``format:
    bagit`` (the copy is a bag; its own manifests are read).  ``paths`` says
    what names inside a manifest are relative to: ``manifest`` (its own folder),
    ``dataset`` (the copy's root) or a folder inside the copy."""

    file: str | None = None
    glob: str | None = None
    format: str = "coreutils"
    algorithm: str = "md5"
    paths: str = "dataset"
    strip: str | None = None

    @property
    def label(self) -> str:
        """How the report names this entry."""
        if self.format == "bagit":
            return "the BagIt bag"
        return self.file or f"glob {self.glob}"


@dataclass(frozen=True, kw_only=True)
class DatasetSettings:
    """What a dataset declares besides its copies: what a collection hands down
    to every dataset it finds."""

    policy: str | None = None
    #: Producer manifests (empty: none; the reference is recorded from the primary).
    checksums: tuple[ChecksumsSpec, ...] = ()
    exclude: tuple[str, ...] = ()
    cls: str | None = None
    description: str | None = None

    def settings(self) -> dict[str, Any]:
        """These settings alone, as keyword arguments for another entry."""
        return {f.name: getattr(self, f.name) for f in fields(DatasetSettings)}


@dataclass(frozen=True)
class Dataset(DatasetSettings):
    name: str
    copies: tuple[CopySpec, ...]
    #: The collection that found this dataset (``collections:``), else None.
    collection: str | None = None
    #: Set for a collection dataset audited before whose primary folder has
    #: gone: why it fails (violation ``dataset-gone``) until it is forgotten.
    gone: str | None = None

    @property
    def primary(self) -> CopySpec:
        for copy in self.copies:
            if copy.primary:
                return copy
        return self.copies[0]

    @property
    def keypath(self) -> str:
        """Where its settings are written in the inventory."""
        if self.collection is not None:
            return join("collections", self.collection)
        return join("datasets", self.name)


@dataclass(frozen=True)
class Collection(DatasetSettings):
    """A ``collections:`` entry: every folder matching ``glob`` on ``location``
    is the primary copy of one dataset, named ``<name>/<match>``; ``copies``
    are its other copies, their paths templates with ``{path}`` (the matched
    folder below the location's root) and ``{name}`` (its last part)."""

    name: str
    location: str
    glob: str
    #: Indexes from 1: the primary, the matched folder, is copy 0.
    copies: tuple[CopySpec, ...]
    #: Matched folders left out (globs on the folder's name or its path).
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class CoverageSpec:
    """A ``coverage:`` entry: every folder ``depth`` levels below ``path`` on
    ``location`` must lie in some dataset's copy, unless ``ignore`` matches it."""

    location: str
    path: str
    depth: int
    ignore: tuple[str, ...] = ()
    index: int = 0


def declared_twice(locations: Mapping[str, Location], dataset: Dataset
                   ) -> dict[int, CopySpec]:
    """Copies of ``dataset`` declared at the address of an earlier one (the
    primary first): copy index -> that first copy."""
    first: dict[tuple[str, ...], CopySpec] = {}
    out = {}
    primary = dataset.primary
    for copy in (primary, *(c for c in dataset.copies if c is not primary)):
        seen = first.setdefault(copy_address(locations[copy.location], copy.path), copy)
        if seen is not copy:
            out[copy.index] = seen
    return out


@dataclass(frozen=True)
class Inventory:
    path: str
    folder: str
    locations: Mapping[str, Location]
    datasets: Mapping[str, Dataset]
    policy: str | None = None
    #: class -> policy (``policies:`` at the top level).
    class_policies: Mapping[str, str] = field(default_factory=dict)
    document: Document | None = None
    #: Links between sites and the courier (``transfer:``), for ``threetwoone plan``.
    transfer: Transfer = field(default_factory=Transfer)
    #: ``collections:``, expanded into datasets by expansion.py (touching storage).
    collections: Mapping[str, Collection] = field(default_factory=dict)
    coverage: tuple[CoverageSpec, ...] = ()


#: Inventory names of manifest algorithms -> threetwoone's.
MANIFEST_ALGORITHMS = {"md5": "md5", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256",
                       "sha384": "sha384", "sha512": "sha512", "xxh128": "xxh3_128",
                       "xxh3_128": "xxh3_128"}
MANIFEST_FORMATS = ("coreutils", "sidecar", "bagit")
_CHECKSUMS_KEYS: dict[str, tuple[Check, bool]] = {
    "file": (text, False), "glob": (text, False), "format": (text, False),
    "algorithm": (text, False), "paths": (text, False), "strip": (text, False)}


def _inside_copy(value: str) -> str | None:
    """Why ``value`` is not a relative path that stays inside a copy, or None."""
    if value.startswith("/") or value.startswith("~"):
        return "must be a path inside the copy (relative to its root, no leading '/')"
    if any(part == ".." for part in value.replace("\\", "/").split("/")):
        return "must not contain '..': it would leave the copy"
    return None


def _secret_hint(key: str, schema: Mapping[str, object]) -> str:
    """Where a secret written under ``key`` belongs, for the mapping whose keys
    are ``schema``: never a key that this very mapping would then refuse."""
    hint = SECRET_KEYS[key]
    named = hint.split()[0]
    if not named.endswith("_env") or named in schema:
        return hint
    if "identity_file" in schema:  # sftp: key-based login only
        return "identity_file (a key file) or an ssh-agent: sftp logs in with keys only"
    if "auth" in schema:  # webdav: credentials live under auth
        return f"auth: {{type: ..., {named}: NAME}} (the name of an environment variable)"
    if "bucket" in schema:
        return "the standard AWS credential chain (environment, profile)"
    return "an environment variable read by the tool that needs it"


class _Validator:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.errors: list[ConfigError] = []
        self.folder = os.path.dirname(os.path.abspath(doc.file))

    def error(self, keypath: str, message: str) -> None:
        self.errors.append(self.doc.error(keypath, message))

    def keys(self, value: dict[Any, Any], keypath: str,
             schema: Mapping[str, tuple[Check, bool]]) -> None:
        """Check a mapping against ``schema``: secrets, unknown keys, required
        keys, value types."""
        for key in value:
            child = key_join(keypath, key)
            if not isinstance(key, str):
                self.error(child, "keys must be strings" + self.doc.unquoted_hint(child, True))
            elif key in SECRET_KEYS:
                self.error(child, f"secrets must not be written in the inventory; "
                                  f"use {_secret_hint(key, schema)}")
            elif key not in schema:
                known = ", ".join(sorted(schema))
                self.error(child, f"unknown key {key!r} (expected one of: {known})")
            else:
                check = env_name if key.endswith("_env") else schema[key][0]
                problem = check(value[key])
                if problem:
                    if check in TEXT_CHECKS:
                        problem += self.doc.unquoted_hint(child)
                    self.error(child, problem)
        for key, (_check, required) in schema.items():
            if required and key not in value:
                self.error(keypath, f"missing required key {key!r}")

    def names(self, value: Any, keypath: str, what: str) -> dict[str, Any]:
        """The entries of a mapping from names (locations, datasets, classes) to
        their settings.  A name YAML read as something else is refused: the keys
        ``1`` and ``"1"`` would otherwise become one name."""
        if not isinstance(value, dict):
            return {}
        out = {}
        for name, entry in value.items():
            child = key_join(keypath, name)
            if not isinstance(name, str):
                self.error(child, f"a {what} name must be text"
                           + self.doc.unquoted_hint(child, key=True))
            elif not name.strip():
                self.error(child, f"a {what} name must not be empty")
            else:
                out[name] = entry
        return out

    def resolve_path(self, value: str) -> str:
        expanded = os.path.expanduser(value)
        if not os.path.isabs(expanded):
            expanded = os.path.join(self.folder, expanded)
        return os.path.normpath(expanded)

    # -- sections ------------------------------------------------------------
    def location(self, name: str, value: Any, keypath: str) -> Location | None:
        if not isinstance(value, dict):
            self.error(keypath, "a location must be a mapping")
            return None
        from .backends import KINDS, kind_settings  # the backends declare their keys

        kind = value.get("kind")
        if kind not in KINDS:
            if "kind" in value:
                self.error(join(keypath, "kind"),
                           f"unknown kind {kind!r} (expected one of: {', '.join(KINDS)})")
            else:
                self.error(keypath, "missing required key 'kind'")
            return None
        self.keys(value, keypath, {**COMMON_LOCATION_KEYS, **kind_settings(kind)})
        auth = value.get("auth")
        if isinstance(auth, dict):
            self.auth(auth, join(keypath, "auth"))
            if auth.get("type") == "cert" and "cert" not in value:
                self.error(join(keypath, "auth"), "auth type 'cert' needs the location's "
                           "'cert' (a certificate, or a proxy file holding the key too)")
        if "offline_max_age" in value:
            if kind != "local":
                self.error(join(keypath, "offline_max_age"), "only a local location (a disk "
                           "whose root is absent while unplugged) can keep remembered states")
            elif value.get("offline") is not True:
                self.error(join(keypath, "offline_max_age"), "needs offline: true")
        settings = dict(value)
        if kind == "local" and isinstance(settings.get("root"), str):
            settings["root"] = self.resolve_path(settings["root"])
        for key in PATH_KEYS & settings.keys():
            if isinstance(settings[key], str):
                settings[key] = self.resolve_path(settings[key])
        return Location(name=name, kind=kind, media=str(value.get("media", "")),
                        site=str(value.get("site", "")), settings=settings,
                        line=self.doc.line(keypath))

    def auth(self, auth: dict[str, Any], keypath: str) -> None:
        self.keys(auth, keypath, AUTH_KEYS)
        kind = auth.get("type")
        if isinstance(kind, str):
            if kind not in AUTH_TYPES:
                self.error(join(keypath, "type"), f"unknown auth type {kind!r} "
                           f"(expected one of: {', '.join(AUTH_TYPES)})")
            else:
                for needed in AUTH_TYPES[kind]:
                    if needed not in auth:
                        self.error(keypath, f"auth type {kind!r} needs {needed!r}")

    def copies(self, value: Any, keypath: str, locations: Mapping[str, Any]
               ) -> tuple[CopySpec, ...]:
        if not isinstance(value, list) or not value:
            self.error(keypath, "must be a non-empty list of copies")
            return ()
        out: list[CopySpec] = []
        primaries: list[str] = []
        for index, copy in enumerate(value):
            path = join(keypath, index)
            if not isinstance(copy, dict):
                self.error(path, "a copy must be a mapping with 'location' and 'path'")
                continue
            self.keys(copy, path, {"location": (text, True), "path": (text, True),
                                   "primary": (flag, False), "description": (text, False)})
            location = copy.get("location")
            if isinstance(location, str) and location not in locations:
                self.error(join(path, "location"), f"unknown location {location!r}")
            copy_path = copy.get("path")
            if isinstance(copy_path, str) and any(part == ".." for part in copy_path.split("/")):
                self.error(join(path, "path"), "must not contain '..'")
            if copy.get("primary") is True:
                primaries.append(path)
            if isinstance(location, str) and isinstance(copy_path, str):
                out.append(CopySpec(location=location, path=copy_path,
                                    primary=copy.get("primary") is True, index=index))
        if len(primaries) > 1:
            self.error(primaries[1], f"more than one primary copy (also {primaries[0]})")
        return tuple(out)

    def dataset(self, name: str, value: Any, keypath: str,
                locations: Mapping[str, Any]) -> Dataset | None:
        if not isinstance(value, dict):
            self.error(keypath, "a dataset must be a mapping")
            return None
        self.keys(value, keypath, {
            "copies": (lambda v: None, True), "policy": (text, False),
            "checksums": (lambda v: None, False), "exclude": (string_list, False),
            "class": (text, False), "description": (text, False)})
        checksums = self.checksums(value.get("checksums"), join(keypath, "checksums"))
        copies = self.copies(value.get("copies"), join(keypath, "copies"), locations)
        if not copies:
            return None
        return Dataset(name=name, copies=copies, policy=value.get("policy"),
                       checksums=checksums, exclude=tuple(value.get("exclude") or ()),
                       cls=value.get("class"), description=value.get("description"))

    def checksums(self, value: Any, keypath: str) -> tuple[ChecksumsSpec, ...]:
        """``checksums:``: one mapping or a list of them."""
        if value is None:
            return ()
        items: list[tuple[str, Any]]
        if isinstance(value, dict):
            items = [(keypath, value)]
        elif isinstance(value, list) and value:
            items = [(join(keypath, i), v) for i, v in enumerate(value)]
        else:
            self.error(keypath, "must be a mapping ({file: ..} or {glob: ..}) or a "
                                "non-empty list of them")
            return ()
        specs = []
        for ckey, spec in items:
            if not isinstance(spec, dict):
                self.error(ckey, "must be a mapping with 'file', 'glob' or 'format: bagit'")
                continue
            parsed = self.checksums_entry(spec, ckey)
            if parsed:
                specs.append(parsed)
        if len(specs) > 1 and any(s.format == "bagit" for s in specs):
            self.error(keypath, "format 'bagit' describes the whole copy with the bag's "
                                "own manifests: it cannot be combined with other entries")
        return tuple(specs)

    def checksums_entry(self, spec: dict[str, Any], ckey: str) -> ChecksumsSpec | None:
        # Imported here: only inventories that declare producer manifests pay for them.
        from . import manifest, pathglob

        errors = len(self.errors)
        self.keys(spec, ckey, _CHECKSUMS_KEYS)
        fmt = spec.get("format", "coreutils")
        if isinstance(fmt, str) and fmt not in MANIFEST_FORMATS:
            self.error(join(ckey, "format"), f"unknown format {fmt!r} (expected one of: "
                                             f"{', '.join(MANIFEST_FORMATS)})")
        if fmt == "bagit":
            extra = sorted(k for k in spec if k != "format")
            if extra:
                self.error(join(ckey, extra[0]), "format 'bagit' takes no other keys: the "
                           "copy is the bag, and its manifest-ALG.txt files say the rest")
            return None if len(self.errors) > errors else ChecksumsSpec(format="bagit")
        named = [k for k in ("file", "glob") if k in spec]
        if len(named) != 1:
            self.error(ckey, "needs exactly one of 'file' (a manifest) and 'glob' (every "
                             "manifest matching it), or 'format: bagit'")
        for key in named:
            if isinstance(spec[key], str):
                problem = (_inside_copy(spec[key]) if key == "file"
                           else pathglob.problem(spec[key]))
                if problem:
                    self.error(join(ckey, key), problem)
        algorithm = spec.get("algorithm", "md5")
        if isinstance(algorithm, str) and algorithm not in MANIFEST_ALGORITHMS:
            self.error(join(ckey, "algorithm"), f"unsupported algorithm {algorithm!r} "
                       f"(expected one of: {', '.join(MANIFEST_ALGORITHMS)})")
        paths = spec.get("paths", "manifest" if "glob" in spec else "dataset")
        if fmt == "sidecar" and "paths" in spec:
            self.error(join(ckey, "paths"), "format 'sidecar' takes no 'paths': X.md5 "
                                            "always describes the file X beside it")
        if isinstance(paths, str) and paths not in ("manifest", "dataset"):
            problem = _inside_copy(paths)
            if problem:
                self.error(join(ckey, "paths"), "must be 'manifest', 'dataset' or a folder "
                                                "inside the copy; " + problem)
        if fmt == "sidecar" and "strip" in spec:
            self.error(join(ckey, "strip"), "format 'sidecar' takes no 'strip': a "
                                            "sidecar's name, if any, is not used")
        if len(self.errors) > errors:
            return None
        file = spec.get("file")
        return ChecksumsSpec(
            file="/".join(manifest.split_path(file)) if isinstance(file, str) else None,
            glob=spec.get("glob"), format=str(fmt),
            algorithm=MANIFEST_ALGORITHMS[str(algorithm)],
            paths=paths if paths in ("manifest", "dataset")
            else "/".join(manifest.split_path(str(paths))),
            strip=spec.get("strip"))

    def inventory(self) -> Inventory:
        data = self.doc.data
        if not isinstance(data, dict):
            raise self.doc.error("", "an inventory must be a mapping with 'version', "
                                     "'locations' and 'datasets'")
        self.keys(data, "", {"version": (lambda v: None, True), "policy": (text, False),
                             "policies": (mapping, False), "locations": (mapping, True),
                             "datasets": (mapping, False), "description": (text, False),
                             "transfer": (lambda v: None, False),
                             "collections": (mapping, False),
                             "coverage": (lambda v: None, False)})
        if "datasets" not in data and "collections" not in data:
            self.error("", "missing required key 'datasets' (or 'collections')")
        version = data.get("version", 1)
        # Exactly the integer 1: YAML's true and 1.0 compare equal to 1 in Python.
        if type(version) is not int or version != 1:
            self.error("version", f"unsupported inventory version {shown(version)} "
                                  "(this threetwoone reads version 1)")
        raw_locations = self.names(data.get("locations"), "locations", "location")
        locations: dict[str, Location] = {}
        for name, value in raw_locations.items():
            location = self.location(name, value, join("locations", name))
            if location:
                locations[name] = location
        class_policies: dict[str, str] = {}
        for cls, policy in self.names(data.get("policies"), "policies", "class").items():
            if not isinstance(policy, str) or not policy:
                self.error(join("policies", cls), "must be a policy name or file"
                           + self.doc.unquoted_hint(join("policies", cls)))
            else:
                class_policies[cls] = policy
        datasets: dict[str, Dataset] = {}
        raw_datasets = self.names(data.get("datasets"), "datasets", "dataset")
        if data.get("datasets") == {} and not data.get("collections"):
            self.error("datasets", "no datasets declared")
        for name, value in raw_datasets.items():
            dataset = self.dataset(name, value, join("datasets", name), raw_locations)
            if dataset:
                datasets[name] = dataset
        transfer = parse_transfer(data.get("transfer"), (loc.site for loc in locations.values()),
                                  self.error)
        from .collection import read_collections, read_coverage
        collections = read_collections(self, data.get("collections"), raw_locations, datasets)
        coverage = read_coverage(self, data.get("coverage"), raw_locations)
        if self.errors:
            raise ConfigErrors(self.errors)
        return Inventory(path=self.doc.file, folder=self.folder, locations=locations,
                         datasets=datasets, policy=data.get("policy"),
                         class_policies=class_policies, document=self.doc, transfer=transfer,
                         collections=collections, coverage=coverage)


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load and validate an inventory; raise ConfigError(s) (exit 4) when invalid."""
    return _Validator(load_file(path)).inventory()
