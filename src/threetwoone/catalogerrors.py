"""Why the state catalog cannot be used, told apart, with the action that fits.

The catalog holds every dataset's reference: what each file contained when it
was last known good.  "Move it aside and start a new one" discards all of that,
and the next audit records each primary as it is then, rot included, as the new
reference.  So that advice is given only where nothing else can help (a damaged
catalog with no backup), and says what is lost.  A read-only folder, a full
disk, a lock or a newer schema each have their own, harmless, way out.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import StateError

# SQLite's primary result codes (the low byte of an extended code).
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT = 3, 5, 6, 8, 10, 11
_FULL, _CANTOPEN, _PROTOCOL, _AUTH, _NOTADB = 13, 14, 15, 23, 26

KEEP_IT = "Do not start a new catalog: that would lose every recorded reference."
LOST = ("a new catalog loses every recorded reference, and the next audit records each "
        "primary's content as it is then, any rot included, as the new reference")


def explain(exc: BaseException, path: str) -> StateError:
    """One line for an ``OSError`` or ``sqlite3.Error`` met while creating,
    opening, locking or writing the catalog at ``path``."""
    if isinstance(exc, OSError):
        cause = {errno.EACCES: "permissions", errno.EPERM: "permissions",
                 errno.EROFS: "permissions", errno.ENOSPC: "full", errno.EDQUOT: "full",
                 errno.EIO: "io", errno.ENOTDIR: "path", errno.EEXIST: "path"
                 }.get(exc.errno or 0, "other")
        detail = exc.strerror or str(exc)
    else:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        cause = {_PERM: "permissions", _READONLY: "permissions", _AUTH: "permissions",
                 _CANTOPEN: "permissions", _FULL: "full", _BUSY: "locked", _LOCKED: "locked",
                 _PROTOCOL: "locked", _CORRUPT: "corrupt", _NOTADB: "notadb",
                 _IOERR: "io"}.get(code, "other")
        detail = str(exc)
    if cause in ("io", "other") and _low_on_space(path):
        # SQLite reports a full disk as an I/O error where it cannot grow the
        # -shm file it maps; errno is lost by then.
        cause = "full"
    return StateError(_MESSAGES[cause](path, detail))


def _permissions(path: str, detail: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    user = _user()
    if _read_only_filesystem(folder):
        action = (f"the filesystem holding {folder} is mounted read-only: remount it "
                  "read-write, or copy the catalog to a writable place and point --state "
                  "there")
    elif not os.path.isdir(folder):
        action = (f"the folder {folder} cannot be created: create it, writable by {user}, "
                  "or point --state elsewhere")
    elif os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        owner = _owner(path)
        action = (f"this account ({user}) cannot read and write it (owned by {owner}): run "
                  f"as {owner}, or give {user} read and write access to it and to its folder")
    elif not os.access(folder, os.W_OK | os.X_OK):
        owner = _owner(path if os.path.exists(path) else folder)
        action = (f"this account ({user}) cannot write the folder {folder}, where SQLite "
                  "keeps the catalog's -wal and -shm files: "
                  f"make the folder writable for {user}, or run as {owner}")
    else:
        action = (f"check that {user} may write it and the -wal and -shm files "
                  f"beside it in {folder}")
    return f"state catalog {path} cannot be written ({detail}): {action}. {KEEP_IT}"


def _temp_folder() -> str:
    """Where SQLite puts temporary tables (imported here only: start-up stays lean)."""
    import tempfile
    return os.environ.get("SQLITE_TMPDIR") or tempfile.gettempdir()


def _full(path: str, detail: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    temp = _temp_folder()
    space = f"{_free(folder)} free in {folder}"
    if _free(temp) != _free(folder):
        space += f", {_free(temp)} in {temp}, the temporary folder SQLite also uses"
    return (f"state catalog {path}: no space left ({detail}; {space}): free some space and "
            "run again. The catalog is intact: the unfinished transaction was rolled back. "
            f"{KEEP_IT}")


def _locked(path: str, detail: str) -> str:
    return (f"state catalog {path} is locked by another process ({detail}): let the other "
            "threetwoone run finish (or raise --lock-timeout). On a network filesystem "
            "(NFS, SMB) SQLite's locks may not work at all: keep the catalog on a local disk. "
            "Never delete the catalog or its -wal file to break a lock.")


def _corrupt(path: str, detail: str) -> str:
    return (f"state catalog {path} is damaged ({detail}): restore it from a backup of "
            f"{os.path.dirname(os.path.abspath(path))}, or salvage it with "
            f"`sqlite3 {path} .recover | sqlite3 {path}.recovered` and point --state at the "
            f"result. Only if neither works, move it aside and start a new one: {LOST}.")


def _not_a_database(path: str, detail: str) -> str:
    return (f"state catalog {path} is not a threetwoone catalog ({detail}): check that "
            "--state or $THREETWOONE_STATE names the catalog. If it does, the catalog is "
            "damaged: restore it from a backup; only if there is none, move it aside and "
            f"start a new one: {LOST}.")


def _io(path: str, detail: str) -> str:
    return (f"state catalog {path}: the storage reported an I/O error ({detail}): check the "
            "disk (kernel log, SMART), then copy the catalog with its -wal file to healthy "
            f"storage and point --state there. {KEEP_IT}")


def _not_a_folder(path: str, detail: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    while folder != os.path.dirname(folder) and not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return (f"state catalog {path}: {folder} is not a folder ({detail}): check --state or "
            "$THREETWOONE_STATE")


def _other(path: str, detail: str) -> str:
    return (f"state catalog {path} could not be used ({detail}); run with --debug for "
            f"details. {KEEP_IT}")


_MESSAGES = {"permissions": _permissions, "full": _full, "locked": _locked,
             "corrupt": _corrupt, "notadb": _not_a_database, "io": _io, "path": _not_a_folder,
             "other": _other}


def _read_only_filesystem(folder: str) -> bool:
    while folder and not os.path.exists(folder):
        folder = os.path.dirname(folder)
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _free_bytes(folder: str) -> int | None:
    try:
        info = os.statvfs(folder)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def _low_on_space(path: str) -> bool:
    """Less than 1 MiB left beside the catalog (or in SQLite's temporary folder)."""
    folders = [os.path.dirname(os.path.abspath(path)), _temp_folder()]
    return any((free := _free_bytes(f)) is not None and free < 1 << 20 for f in folders)


def _free(folder: str) -> str:
    count = _free_bytes(folder)
    if count is None:
        return "unknown"
    free: float = count
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if free < 1024 or unit == "TiB":
            return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
        free /= 1024
    return f"{free} bytes"  # not reached


def _owner(path: str) -> str:
    import pwd
    try:
        uid = os.stat(path).st_uid
        return pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return "its owner"


def _user() -> str:
    from .catalog import current_user
    return current_user()


@contextmanager
def explained(path: str) -> Iterator[None]:
    """Turn an SQLite or OS error met while the catalog is in use (a disk that
    fills during a run) into the explained StateError."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        if isinstance(exc, OSError) and not _about(exc, path):
            raise  # a report, a copy, a socket: not the catalog's business
        raise explain(exc, path) from exc


def _about(exc: OSError, path: str) -> bool:
    """An OSError is the catalog's when it names one of the catalog's files."""
    names = {os.path.abspath(path + suffix) for suffix in ("", "-wal", "-shm")}
    names.add(os.path.dirname(os.path.abspath(path)))
    return any(isinstance(f, str) and os.path.abspath(f) in names
               for f in (exc.filename, exc.filename2))
