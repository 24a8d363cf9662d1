"""Storage backends, looked up by inventory ``kind`` and imported only when used.

A run over local disks never pays for paramiko, requests or boto3: each
backend module is imported the first time a location of its kind is audited.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from ..errors import ThreeTwoOneError
from ..inventory import Location
from ..settingchecks import Schema
from .interface import (
    Backend,
    BackendError,
    CopyFailed,
    Entry,
    EntryKind,
    FolderListing,
    HashResult,
    LocationUnreachable,
    NotAFolder,
    RootInfo,
    WalkProblem,
)

__all__ = [
    "KINDS",
    "Backend",
    "BackendError",
    "CopyFailed",
    "Entry",
    "EntryKind",
    "FolderListing",
    "HashResult",
    "LocationUnreachable",
    "MissingDependency",
    "NotAFolder",
    "RootInfo",
    "WalkProblem",
    "kind_settings",
    "open_backend",
]

class Kind(NamedTuple):
    """A kind of location: where its backend and its inventory keys are.
    Adding a backend is one module (and its settings module) and one line here."""

    #: The module and class of the backend, imported when a location is used.
    module: str
    cls: str
    #: The pip extra that provides its library, if it is optional.
    extra: str | None
    #: The module whose ``SETTINGS`` are the location's inventory keys (light:
    #: validation imports it, never the backend's libraries).
    settings: str


REGISTRY: dict[str, Kind] = {
    "local": Kind("threetwoone.backends.local", "LocalBackend", None,
                  "threetwoone.backends.local_settings"),
    "sftp": Kind("threetwoone.backends.sftp.backend", "SFTPBackend", None,
                 "threetwoone.backends.sftp.settings"),
    "webdav": Kind("threetwoone.backends.webdav", "WebDAVBackend", None,
                   "threetwoone.backends.webdav_settings"),
    "s3": Kind("threetwoone.backends.s3", "S3Backend", "s3", "threetwoone.backends.s3_settings"),
}

#: The kinds an inventory may name.
KINDS = tuple(REGISTRY)


def kind_settings(kind: str) -> Schema:
    """The inventory keys of a ``kind`` location, besides those every location has."""
    settings: Schema = importlib.import_module(REGISTRY[kind].settings).SETTINGS
    return settings


class MissingDependency(ThreeTwoOneError):
    """A backend's optional library is not installed."""


def backend_class(kind: str) -> type[Backend]:
    module_name, class_name, extra, _settings = REGISTRY[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("threetwoone"):
            raise
        hint = f"pip install 'threetwoone[{extra}]'" if extra else f"pip install {exc.name}"
        raise MissingDependency(
            f"{kind} locations need the Python package {exc.name!r}: {hint}") from None
    cls: type[Backend] = getattr(module, class_name)
    return cls


def open_backend(location: Location) -> Backend:
    """A backend for ``location`` (not yet connected)."""
    return backend_class(location.kind)(location.name, location)
