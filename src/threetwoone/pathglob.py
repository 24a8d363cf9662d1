"""Globs over ``/``-separated relative paths, with ``**`` crossing folders.

``fnmatch`` lets ``*`` match ``/`` and has no ``**``; ``glob.translate`` only
arrived in Python 3.13.  The rules here are the shell's (and rsync's, git's):

* ``*`` matches any run of characters within one path component;
* ``?`` matches one character other than ``/``; ``[...]`` a character class;
* ``**`` as a whole component matches zero or more folders (``**/*.md5``
  matches ``a.md5`` and ``x/y/a.md5``); a trailing ``**`` matches everything below.

A glob is always relative to a copy's root: no leading ``/``, no ``..``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPECIAL = frozenset("*?[")


@dataclass(frozen=True)
class PathGlob:
    pattern: str
    regex: re.Pattern[str]
    #: The leading folders without wildcards: only they need to be walked.
    prefix: str

    def match(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None


def problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable glob inside a copy, or None."""
    if not pattern:
        return "must be a non-empty glob"
    if pattern.startswith("/"):
        return "must be relative to the copy's root (no leading '/')"
    if any(part == ".." for part in pattern.split("/")):
        return "must not contain '..' (it would leave the copy)"
    if pattern.endswith("/"):
        return "must name files, not end with '/'"
    return None


def compile_glob(pattern: str) -> PathGlob:
    """Compile ``pattern`` (validated with :func:`problem` first)."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    out: list[str] = []
    prefix: list[str] = []
    literal = True
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            literal = False
            # Zero or more whole folders (or, at the end, anything below).
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        if literal and not (_SPECIAL & set(part)) and not last:
            prefix.append(part)
        else:
            literal = False
        out.append(_component(part) + ("" if last else "/"))
    return PathGlob(pattern, re.compile("".join(out), re.S), "/".join(prefix))


def _component(part: str) -> str:
    """One path component: ``*``, ``?`` and ``[...]`` never match ``/``."""
    out: list[str] = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = part.find("]", i + 2 if part[i + 1:i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = part[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("(?!/)[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
