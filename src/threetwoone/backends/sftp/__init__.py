"""SFTP locations: the backend (:mod:`.backend`) over SSH (see ``..ssh``), with
SFTP packets on the wire (:mod:`.wire`), pipelined streaming (:mod:`.streamer`)
and pipelined listing (:mod:`.lister`)."""

from .backend import SFTPBackend
from .streamer import VIA_STREAM

__all__ = ["VIA_STREAM", "SFTPBackend"]
