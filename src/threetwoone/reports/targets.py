"""Where reports go: ``--report FORMAT:PATH`` (repeatable) and ``-o FILE``.

Every target is checked before anything is audited, so a typo costs a second,
not a night's audit; a bad one is a usage error (exit 2).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReportTarget:
    format: str
    path: str
    #: ``-o`` gets the ``-q`` view of the ``--format``; ``--report`` files are whole.
    quiet: bool = False


def parse_target(text: str, formats: Iterable[str]) -> ReportTarget:
    """``json:/var/lib/threetwoone/last.json`` -> ReportTarget; ValueError says why not."""
    choices = list(formats)
    fmt, sep, path = text.partition(":")
    if not sep:
        raise ValueError(f"{text!r} is not FORMAT:PATH (formats: {', '.join(choices)})")
    if fmt not in choices:
        raise ValueError(f"unknown report format {fmt!r} in {text!r} (formats: "
                         f"{', '.join(choices)})")
    check_path(path)
    return ReportTarget(fmt, path)


def check_path(path: str) -> None:
    """A report path must name a regular file (or nothing yet) in an existing
    folder.  Raises ValueError naming what is wrong."""
    if not path:
        raise ValueError("the report path is empty")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: folder {folder} does not exist")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path} is a folder")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file; a report replaces only regular "
                         "files")


def check_distinct(targets: Iterable[ReportTarget]) -> None:
    """Two reports to one file would overwrite each other: ValueError."""
    seen: dict[str, ReportTarget] = {}
    for target in targets:
        key = os.path.realpath(target.path)
        if key in seen:
            raise ValueError(f"{target.path} is named twice (as {seen[key].format} and "
                             f"{target.format})")
        seen[key] = target
