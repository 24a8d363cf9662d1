"""SFTP locations: the backend (:mod:`.backend`) over SSH (see ``..ssh``), with
SFTP packets on the wire (:mod:`.wire`), pipelined streaming (:mod:`.streamer`)
and pipelined listing (:mod:`.lister`); the inventory keys in :mod:`.settings`.

Importing this package loads no SSH library: validating an inventory reads the
settings alone; the backend (and paramiko) come with the first use of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import SFTPBackend
    from .streamer import VIA_STREAM

__all__ = ["VIA_STREAM", "SFTPBackend"]


def __getattr__(name: str) -> Any:
    if name == "SFTPBackend":
        from .backend import SFTPBackend
        return SFTPBackend
    if name == "VIA_STREAM":
        from .streamer import VIA_STREAM
        return VIA_STREAM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
