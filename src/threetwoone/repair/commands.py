"""The command a person runs for one action: printed by ``threetwoone plan``,
never run by it.  For a POSIX shell (sh, bash, zsh): every word is quoted with
``shlex.quote``, so names with spaces, quotes, ``$`` or globs stay one word.

- local and SFTP ends: ``rsync -a`` (``-s``: remote paths go to the remote
  rsync as data, never through the remote shell; host keys are checked
  strictly, never accepted on the way);
- a WebDAV or S3 end, or two SFTP ends (rsync cannot copy between two remote
  hosts): ``rclone copy`` with on-the-fly remotes that name no secret: the
  credentials come from the environment the audit reads them from.  A bearer
  token is read by ``printenv`` from the variable the inventory names (never
  printed when the name looks like the secret itself, see envnames); a basic
  auth password, which rclone takes only obscured from its configuration, is
  obscured from that variable into the environment of rclone alone (a remote
  defined there, one per end); S3 credentials come from the usual AWS
  environment or profile.  SFTP ends speak SFTP only (``shell_type=none``):
  rclone would otherwise run ``md5sum`` with file names through the host's
  login shell.

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

from ..envnames import looks_like_secret
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


#: Printed for a variable name that looks like a secret pasted in its place
#: (see envnames) when no variable has that name.  No variable has this one
#: either: the command fails on its credentials rather than print the secret.
HIDDEN_VARIABLE = "THREETWOONE_VARIABLE_NAME_NOT_SHOWN"


def _variable(name: str) -> str:
    """The variable a command reads a secret from, as the inventory names it."""
    if looks_like_secret(name) and name not in os.environ:
        return HIDDEN_VARIABLE
    return name


def _option(name: str, value: str) -> str:
    """``name=value`` inside an rclone connection string; values with anything
    but plain characters are quoted (rclone doubles quotes inside quotes)."""
    if _PLAIN.fullmatch(value):
        return f"{name}={value}"
    return '{}="{}"'.format(name, value.replace('"', '""'))


@dataclass(frozen=True)
class _Remote:
    """An rclone end: its argument, and the environment it needs first."""

    arg: str
    #: ``NAME=value`` words set in front of ``rclone`` (values already quoted).
    env: tuple[str, ...] = ()


def _rclone_end(end: End, role: str) -> _Remote:
    """``role`` (source or target) names the end's remote when it needs one."""
    location = end.location
    folder = end.folder()
    if location.kind == "local":
        return _Remote(folder.rstrip("/") + "/")
    options: list[str] = []
    remote = f":{location.kind}"
    env: tuple[str, ...] = ()
    if location.kind == "sftp":
        options.append(_option("host", str(location.attribute("host"))))
        for key, option in (("user", "user"), ("port", "port"),
                            ("identity_file", "key_file")):
            if location.attribute(key) is not None:
                options.append(_option(option, str(location.attribute(key))))
        known = location.attribute("known_hosts") or os.path.expanduser("~/.ssh/known_hosts")
        options.append(_option("known_hosts_file", str(known)))
        # rclone would otherwise run md5sum/sha1sum through the remote shell,
        # with file names on its command line.
        options.append("shell_type=none")
    elif location.kind == "webdav":
        options += [_option("url", str(location.attribute("url"))), "vendor=other"]
        auth = location.attribute("auth") or {}
        if auth.get("type") == "bearer":
            token = _variable(auth["token_env"])
            options.append(_option("bearer_token_command", f"printenv {token}"))
        elif auth.get("type") == "basic":
            options.append(_option("user", str(auth["username"])))
            # rclone takes a password only from its config (obscured), never
            # from a command: a remote defined in rclone's environment, its
            # password obscured from the variable the inventory names.  Named
            # per role, so two ends may have different passwords.
            remote = f"t321{role}"
            prefix = f"RCLONE_CONFIG_{remote.upper()}_"
            password = _variable(auth["password_env"])
            env = (f"{prefix}TYPE=webdav",
                   f'{prefix}PASS="$(printenv {password} | rclone obscure -)"')
    else:  # s3
        options += ["provider=Other", "env_auth=true"]
        for key, option in (("endpoint_url", "endpoint"), ("region", "region"),
                            ("profile", "profile")):
            if location.attribute(key):
                options.append(_option(option, str(location.attribute(key))))
    return _Remote(shlex.quote(f"{remote},{','.join(options)}:{folder}"), env)


def _rclone(source: End, target: End, files: FileList) -> str:
    words = ["rclone", "copy"]
    for end in (source, target):
        if end.location.kind != "webdav":
            continue
        for key, flag in (("cert", "--client-cert"), ("key", "--client-key"),
                          ("ca_bundle", "--ca-cert")):
            if end.location.attribute(key):
                words += [flag, str(end.location.attribute(key))]
        if end.location.attribute("verify_tls") is False and "--no-check-certificate" not in words:
            words.append("--no-check-certificate")  # as the audit does for this location
    if files.names is not None or files.lister is not None:
        words += ["--files-from-raw", "-", "--no-traverse", "--ignore-times"]
    ends = [_rclone_end(source, "source"), _rclone_end(target, "target")]
    env = [assignment for end in ends for assignment in end.env]
    return (_feed(files, nul=False) + " ".join(env + [shlex.quote(w) for w in words]
                                               + [end.arg for end in ends]))
