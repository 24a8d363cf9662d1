"""What a backend raises.

A location that cannot be reached at all is :class:`LocationUnreachable` (the
copy becomes ``unreachable``); a failure after a successful connect that stops
the whole copy is :class:`CopyFailed` (``error``); a copy path that names a
file is :class:`NotAFolder` (``missing``).  One unreadable file is no
exception: it is a ``HashResult`` with ``error`` set.
"""

from __future__ import annotations


class BackendError(Exception):
    """Root of the errors a backend raises; the message is one clear line."""


class LocationUnreachable(BackendError):
    """The location could not be reached or authenticated (DNS, refused, auth, host key)."""


class CopyFailed(BackendError):
    """The location was reached, but this copy could not be audited to the end."""


class NotAFolder(BackendError):
    """A copy's path exists on a reachable location but is a file, not a folder:
    the copy is not there (``missing``)."""
