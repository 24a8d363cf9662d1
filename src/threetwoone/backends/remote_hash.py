"""Hashing on the storage host with the tools it already has (pure, no I/O).

Reading a copy over SFTP moves every byte through the network and through
Python; ``xxhsum``/``sha256sum``/``md5sum`` on the host read it where it lives.
The price is trusting a remote command's output, so this module is strict:

* the tools are probed once per host by hashing empty input and comparing with
  the known digest, so a missing tool, an ``xxhsum`` without ``-H2``, a
  restricted shell or a ``ForceCommand internal-sftp`` all read as "no tool";
* every path is ``shlex.quote``d, so a name like ``$(touch pwned)`` is data;
* a name is given to a tool only if its output line cannot be mistaken for
  another: never a name with a newline, a carriage return or a backslash
  (tools print those raw or escaped, depending on the tool and its version);
  those files are read over SFTP instead;
* every output line must be ``DIGEST  NAME`` for a name that was asked, in
  order, each at most once; anything else distrusts the whole output.  Only an
  answer with exit status 0 that accounts for every name is taken as it is (see
  :func:`accept`).

A file without a trustworthy line is never reported as corrupt: the caller
reads it over SFTP instead, which also yields the real error (permission denied).
"""

from __future__ import annotations

import os
import shlex
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tool:
    algorithm: str
    command: str
    #: Length of the hex digest.
    hexlen: int
    #: The digest of empty input, to prove the tool computes what we think.
    empty: str

    @property
    def via(self) -> str:
        return f"remote {self.command}"


#: In order of preference when several requested algorithms have a tool.
TOOLS: dict[str, Tool] = {
    "xxh3_128": Tool("xxh3_128", "xxhsum -H2", 32, "99aa06d3014798d86001c324468d497f"),
    "sha256": Tool("sha256", "sha256sum", 64,
                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    "md5": Tool("md5", "md5sum", 32, "d41d8cd98f00b204e9800998ecf8427e"),
    "sha1": Tool("sha1", "sha1sum", 40, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    "sha512": Tool("sha512", "sha512sum", 128,
                   "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                   "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
}

PROBE_MARKER = b"threetwoone-probe-1"

#: Keep a command well below sshd's packet limit and the remote ARG_MAX (the
#: shell gets it as one argument: Linux allows 128 KiB).  Each exec costs a
#: session and a shell on the host: on the benchmark's 20k-file tree over
#: loopback, 1024 files per exec (the command size bounds it to ~600 there)
#: hash in 0.7 s against 0.9 s with 256.
MAX_COMMAND_BYTES = 64 * 1024
MAX_BATCH_FILES = 1024
#: A batch answers at least this often, so progress moves and a slow host is
#: told apart from a dead one.
MAX_BATCH_BYTES = 2 * 1024 * 1024 * 1024


def probe_command() -> bytes:
    """One exec that says which tools exist and compute the right digest.

    Written for any POSIX shell; a shell that is not (or a ForceCommand) fails
    the marker check and every tool reads as absent."""
    parts = [f"printf '%s\\n' {PROBE_MARKER.decode()}"]
    parts += [f"{tool.command} </dev/null" for tool in TOOLS.values()]
    return "; ".join(parts).encode()


def parse_probe(output: bytes) -> frozenset[str]:
    """Algorithms whose tool printed the known digest of empty input."""
    lines = output.split(b"\n")
    if not lines or lines[0].strip() != PROBE_MARKER:
        return frozenset()
    found = set()
    rest = {line.strip() for line in lines[1:]}
    for tool in TOOLS.values():
        for name in (b"-", b"stdin"):
            if tool.empty.encode() + b"  " + name in rest:
                found.add(tool.algorithm)
    return frozenset(found)


def quote(value: bytes) -> bytes:
    """``shlex.quote`` for a path that may not be valid UTF-8."""
    return os.fsencode(shlex.quote(os.fsdecode(value)))


#: Bytes a tool may print differently from the name (escaped or as a line
#: break): a name holding one is never given to a tool.
UNPRINTABLE = (b"\n", b"\r", b"\\")
_HEX = frozenset(string.hexdigits.lower().encode())


def hashable(name: bytes) -> bool:
    """Whether a tool's output line for ``name`` is unambiguous."""
    return not any(byte in name for byte in UNPRINTABLE)


def argument(name: bytes) -> bytes:
    """The path a tool is given for ``name`` (relative to the batch's folder):
    ``./`` first, so a file named ``-`` is not read as stdin and no name is
    taken for an option."""
    return name if name.startswith(b"/") else b"./" + name


def batch_command(tool: Tool, folder: bytes, names: Sequence[bytes]) -> bytes:
    """``cd -- FOLDER && exec TOOL -- ./NAME...``: relative names keep the
    command short and the output lines exactly predictable."""
    quoted = b" ".join(quote(argument(name)) for name in names)
    return (b"cd -- " + quote(folder) + b" && exec " + tool.command.encode()
            + b" -- " + quoted)


def parse_output(output: bytes, names: Sequence[bytes], hexlen: int) -> dict[int, str] | None:
    """Digests by index into ``names``, from the stdout of a tool given them
    (as :func:`argument` makes them).

    Every line must be ``DIGEST  NAME`` (or ``DIGEST *NAME``) for one of
    ``names``, in their order, each at most once; a name without a line (the tool
    could not read it) is left out.  Returns None when any line is anything
    else: then nothing of the output is trusted.  The names must be
    :func:`hashable`: no line can then hold two names or part of one."""
    if not output:
        return {}
    if not output.endswith(b"\n"):
        return None
    wanted = [argument(name) for name in names]
    found: dict[int, str] = {}
    index = 0
    for line in output[:-1].split(b"\n"):
        digest, mark, name = line[:hexlen], line[hexlen:hexlen + 2], line[hexlen + 2:]
        if len(digest) != hexlen or not _HEX.issuperset(digest) or mark not in (b"  ", b" *"):
            return None
        while index < len(wanted) and wanted[index] != name:
            index += 1
        if index == len(wanted):
            return None  # not asked for, out of order or twice
        found[index] = digest.decode()
        index += 1
    return found


def accept(status: int, found: dict[int, str] | None, count: int) -> bool:
    """Whether a tool's answer for ``count`` names is complete: exit status 0
    and a line for every name.  A partial answer (a file it could not read, a
    cut connection) is never taken as it is: its digests must be confirmed."""
    return status == 0 and found is not None and len(found) == count


@dataclass(frozen=True, slots=True)
class Item:
    """One file to hash remotely: its index in the caller's list, its name."""

    index: int
    name: bytes
    size: int


def batches(items: Iterable[Item], *, max_files: int | None = None,
            max_bytes: int = MAX_BATCH_BYTES,
            max_command: int = MAX_COMMAND_BYTES) -> Iterator[list[Item]]:
    """Group files so that one exec hashes many of them, within limits
    (``max_files`` defaults to MAX_BATCH_FILES as it is when called)."""
    if max_files is None:
        max_files = MAX_BATCH_FILES
    batch: list[Item] = []
    size = 0
    length = 0
    for item in items:
        cost = len(quote(argument(item.name))) + 1
        if batch and (len(batch) >= max_files or size + item.size > max_bytes
                      or length + cost > max_command):
            yield batch
            batch, size, length = [], 0, 0
        batch.append(item)
        size += item.size
        length += cost
    if batch:
        yield batch
