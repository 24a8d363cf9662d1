"""SSH for the SFTP backend: which host a location means (:mod:`.config`),
connecting and checking its host key (:mod:`.connect`, :mod:`.hostkeys`), one
shared connection per host (:mod:`.pool`), and hashing on the host with the
tools it has (:mod:`.remote_hash`)."""

from .config import Target, resolve_target
from .connect import describe
from .pool import MAX_CHANNELS, Connection, acquire, release

__all__ = ["MAX_CHANNELS", "Connection", "Target", "acquire", "describe", "release",
           "resolve_target"]
