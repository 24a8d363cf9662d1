"""Storage backends, looked up by inventory ``kind`` and imported only when used.

A run over local disks never pays for paramiko, requests or boto3: each
backend module is imported the first time a location of its kind is audited.
"""

from __future__ import annotations

import importlib

from ..errors import ThreeTwoOneError
from ..inventory import Location
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
    "open_backend",
]

#: kind -> (module, class, pip extra that provides its dependency)
REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "local": ("threetwoone.backends.local", "LocalBackend", None),
    "sftp": ("threetwoone.backends.sftp", "SFTPBackend", None),
    "webdav": ("threetwoone.backends.webdav", "WebDAVBackend", None),
    "s3": ("threetwoone.backends.s3", "S3Backend", "s3"),
}


class MissingDependency(ThreeTwoOneError):
    """A backend's optional library is not installed."""


def backend_class(kind: str) -> type[Backend]:
    module_name, class_name, extra = REGISTRY[kind]
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
