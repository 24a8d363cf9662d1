"""The command a person runs for one action: printed by ``threetwoone plan``,
never run by it.  For a POSIX shell (sh, bash, zsh): every word is quoted with
``shlex.quote``, so names with spaces, quotes, ``$`` or globs stay one word.

- local and SFTP ends: ``rsync -a`` (``-s``: remote paths go to the remote
  rsync as data, never through the remote shell; host keys are checked
  strictly, never accepted on the way);
- a WebDAV or S3 end, or two SFTP ends (rsync cannot copy between two remote
  hosts): ``rclone copy`` with on-the-fly remotes that name no secret: a
  bearer token is read by ``printenv`` from the variable the inventory names,
  S3 credentials come from the usual AWS environment or profile.

What to copy: a whole copy from a fully intact source is one tree copy.
Otherwise exactly the files to restore, fed on standard input: listed inline
(``printf``) when they are few and their names printable, else by
``threetwoone plan-files``, which prints them from the catalog (NUL-separated
for rsync).  ``--ignore-times`` makes rsync replace a corrupt file even when
its size and mtime look unchanged (bit rot).
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..inventory import Location
from ..pathnames import needs_escape

#: Files listed inline in a command; more come from ``threetwoone plan-files``.
INLINE_FILES = 20

RSYNC_KINDS = ("local", "sftp")


@dataclass(frozen=True)
class End:
    """One end of a transfer: a copy's folder on a location."""

    location: Location
    path: str

    def folder(self) -> str:
        """The copy's folder as the location's storage names it."""
        below = self.path.strip("/")
        if self.location.kind == "local":
            return os.path.join(self.location.root, below)
        if self.location.kind == "sftp":
            return posixpath.join(str(self.location.attribute("root", "")), below)
        if self.location.kind == "s3":
            prefix = str(self.location.attribute("prefix", "") or "").strip("/")
            return "/".join(p for p in (str(self.location.attribute("bucket")), prefix, below)
                            if p)
        return below  # webdav: below the location's url


@dataclass(frozen=True)
class FileList:
    """Where the files to copy come from: ``names`` when listed inline, else
    the ``plan-files`` command that prints them (None: the whole tree)."""

    names: Sequence[str] | None = None
    #: ``threetwoone plan-files ...`` without its output option.
    lister: str | None = None


def inline(names: Sequence[str]) -> bool:
    """May these names be listed in the command itself (few, printable)?"""
    return len(names) <= INLINE_FILES and not any(needs_escape(n) for n in names)


def command(source: End, target: End, files: FileList) -> str:
    kinds = (source.location.kind, target.location.kind)
    if all(k in RSYNC_KINDS for k in kinds) and kinds != ("sftp", "sftp"):
        return _rsync(source, target, files)
    return _rclone(source, target, files)


# -- rsync ---------------------------------------------------------------------------

def _ssh_host(location: Location) -> str:
    host = str(location.attribute("host"))
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    user = location.attribute("user")
    return f"{user}@{host}" if user else host


def _rsync_arg(end: End) -> str:
    folder = end.folder().rstrip("/") + "/"
    if end.location.kind == "sftp":
        return f"{_ssh_host(end.location)}:{folder}"
    return folder


def _ssh_command(location: Location) -> str:
    words = ["ssh", "-o", "StrictHostKeyChecking=yes"]
    if location.attribute("port") is not None:
        words += ["-p", str(location.attribute("port"))]
    if location.attribute("identity_file"):
        words += ["-i", str(location.attribute("identity_file"))]
    if location.attribute("known_hosts"):
        words += ["-o", f"UserKnownHostsFile={location.attribute('known_hosts')}"]
    return " ".join(shlex.quote(w) for w in words)


def _rsync(source: End, target: End, files: FileList) -> str:
    words = ["rsync", "-a", "--mkpath"]
    remote = next((e.location for e in (source, target) if e.location.kind == "sftp"), None)
    if remote is not None:
        words += ["-s", "-e", _ssh_command(remote)]
    if files.names is not None or files.lister is not None:
        words += ["--from0", "--files-from=-", "--ignore-times"]
    words += [_rsync_arg(source), _rsync_arg(target)]
    return _feed(files, nul=True) + " ".join(shlex.quote(w) for w in words)


def _feed(files: FileList, nul: bool) -> str:
    """``printf ... | `` or ``threetwoone plan-files ... | `` (empty: whole tree)."""
    end = "\\0" if nul else "\\n"
    if files.names is not None:
        names = " ".join(shlex.quote(n) for n in files.names)
        return f"printf {shlex.quote('%s' + end)} {names} | "
    if files.lister is not None:
        return f"{files.lister}{'' if nul else ' --lines'} | "
    return ""


# -- rclone --------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_./@+=-]*")


def _option(name: str, value: str) -> str:
    """``name=value`` inside an rclone connection string; values with anything
    but plain characters are quoted (rclone doubles quotes inside quotes)."""
    if _PLAIN.fullmatch(value):
        return f"{name}={value}"
    return '{}="{}"'.format(name, value.replace('"', '""'))


def _rclone_arg(end: End) -> str:
    location = end.location
    folder = end.folder()
    if location.kind == "local":
        return folder.rstrip("/") + "/"
    options: list[str] = []
    if location.kind == "sftp":
        options.append(_option("host", str(location.attribute("host"))))
        for key, option in (("user", "user"), ("port", "port"),
                            ("identity_file", "key_file")):
            if location.attribute(key) is not None:
                options.append(_option(option, str(location.attribute(key))))
        known = location.attribute("known_hosts") or os.path.expanduser("~/.ssh/known_hosts")
        options.append(_option("known_hosts_file", str(known)))
    elif location.kind == "webdav":
        options += [_option("url", str(location.attribute("url"))), "vendor=other"]
        auth = location.attribute("auth") or {}
        if auth.get("type") == "bearer":
            options.append(_option("bearer_token_command", f"printenv {auth['token_env']}"))
        elif auth.get("type") == "basic":
            options.append(_option("user", str(auth["username"])))
    else:  # s3
        options += ["provider=Other", "env_auth=true"]
        for key, option in (("endpoint_url", "endpoint"), ("region", "region"),
                            ("profile", "profile")):
            if location.attribute(key):
                options.append(_option(option, str(location.attribute(key))))
    return f":{location.kind},{','.join(options)}:{folder}"


def _rclone(source: End, target: End, files: FileList) -> str:
    words = ["rclone", "copy"]
    for end in (source, target):
        for key, flag in (("cert", "--client-cert"), ("key", "--client-key"),
                          ("ca_bundle", "--ca-cert")):
            if end.location.kind == "webdav" and end.location.attribute(key):
                words += [flag, str(end.location.attribute(key))]
    if files.names is not None or files.lister is not None:
        words += ["--files-from-raw", "-", "--no-traverse", "--ignore-times"]
    words += [_rclone_arg(source), _rclone_arg(target)]
    return _feed(files, nul=False) + " ".join(shlex.quote(w) for w in words)
