"""Showing file names that may contain newlines or bytes that are not UTF-8.

Internally a name is a ``str`` decoded with surrogateescape (``os.fsdecode``).
Reports show it escaped the way ``ls -b`` and coreutils do (``\\n``, ``\\\\``,
``\\xff`` for a byte that is not UTF-8), so a hostile name can neither break a
table or a cron mail into fake lines nor make a JSON encoder fail.  Characters
that are valid but act on the display are escaped as ``\\uXXXX``: the C1
controls (U+0080-U+009F; U+0085 is a line break to some readers, U+009B starts
a terminal escape sequence), the Unicode line and paragraph separators
(U+2028, U+2029: new lines in JSON viewers and JavaScript) and the bidirectional
overrides and isolates that make a name read as another (U+202A-U+202E,
U+2066-U+2069).  JSON also carries the exact bytes (base64) whenever the shown
form differs from the real name.
"""

from __future__ import annotations

import base64
import os
import re

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: Everything ``display`` changes: C0 controls and DEL, C1 controls, line and
#: paragraph separators, bidi controls, backslash, undecodable bytes.
_NEEDS_ESCAPE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                           "\u2066-\u2069\udc80-\udcff]")


#: The characters above that change how text is laid out or read (not ``\\``).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """Free text (a message, a name inside a sentence) made safe for one line of
    a terminal or mail: controls, separators, bidi characters and undecodable
    bytes escaped as ``display`` does, backslashes left alone, so text that
    holds an already displayed name is not escaped twice."""
    if _CONTROL.search(text) is None and not any(0xDC80 <= ord(c) <= 0xDCFF for c in text):
        return text
    return _NEEDS_ESCAPE.sub(lambda m: m.group() if m.group() == "\\" else _escape(m), text)


def needs_escape(name: str) -> bool:
    return _NEEDS_ESCAPE.search(name) is not None


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    code = ord(c)
    if c in _ESCAPES:
        return _ESCAPES[c]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"  # a valid character: not to be mistaken for a raw byte


def display(name: str) -> str:
    """A one-line, valid-UTF-8 rendering of a (surrogateescape) name."""
    return _NEEDS_ESCAPE.sub(_escape, name)


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def copy_label(location: str, path: str) -> str:
    """``location:path`` as messages, reports and the catalog name a copy.
    Valid text: a byte of the path that is not UTF-8 (a collection's folder
    may be named so) is written ``\\xNN``; the rest is left for the report's
    own escaping."""
    return f"{location}:{_UNDECODABLE.sub(_escape, path)}"


def raw_base64(name: str) -> str | None:
    """The exact bytes of ``name`` in base64, or None when ``display`` is exact."""
    if not needs_escape(name):
        return None
    return base64.b64encode(os.fsencode(name)).decode("ascii")
