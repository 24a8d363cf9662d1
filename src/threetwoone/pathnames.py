"""Showing file names that may contain newlines or bytes that are not UTF-8.

Internally a name is a ``str`` decoded with surrogateescape (``os.fsdecode``).
Reports show it escaped the way ``ls -b`` and coreutils do (``\\n``, ``\\\\``,
``\\xff``), so a hostile name can neither break a table or a cron mail into fake
lines nor make a JSON encoder fail.  JSON also carries the exact bytes
(base64) whenever the shown form differs from the real name.
"""

from __future__ import annotations

import base64
import os

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def needs_escape(name: str) -> bool:
    return any(c in _ESCAPES or ord(c) < 0x20 or ord(c) == 0x7F
               or 0xDC80 <= ord(c) <= 0xDCFF for c in name)


def display(name: str) -> str:
    """A one-line, valid-UTF-8 rendering of a (surrogateescape) name."""
    if not needs_escape(name):
        return name
    out = []
    for c in name:
        code = ord(c)
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(c)
    return "".join(out)


def raw_base64(name: str) -> str | None:
    """The exact bytes of ``name`` in base64, or None when ``display`` is exact."""
    if not needs_escape(name):
        return None
    return base64.b64encode(os.fsencode(name)).decode("ascii")
