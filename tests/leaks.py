"""Proving that a secret reaches no output: stdout, stderr, report files, the catalog.

A failing path is where secrets leak: an exception message that quotes a header,
a URL printed whole, a "not set" message that echoes a pasted token, a traceback
under ``--debug``.  ``run_with_secret`` runs one command line twice, without and
with ``--debug``, in a real process whose environment holds a known secret, and
fails the test if any piece of the secret shows up anywhere the tool writes::

    secret = make_secret()
    runs = run_with_secret(["audit", str(lab.inventory), "--state", str(lab.state)],
                           env={"DAV_TOKEN": secret}, secret=secret,
                           scan=[lab.tmp], ignore=[lab.inventory])
    assert all(run.returncode == 3 for run in runs)

"A piece" is any run of ``WINDOW`` characters of the secret, also percent-encoded
or base64-encoded (HTTP basic auth), so a truncated echo ("eyJhbGciOi...") or an
encoded one counts as a leak too.  Secrets are built from letters that are not hex
digits, so no checksum in a report can match one by chance.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from conftest import run_subprocess

#: The shortest piece of a secret that counts as a leak.
WINDOW = 10
#: No hex digits (a report is full of checksums), no characters URLs escape.
_ALPHABET = "GHJKLMNPQRSTVWXYZghjkmnpqrstvwxyz"


def make_secret(prefix: str = "tok", length: int = 40) -> str:
    """A fresh random secret, e.g. a bearer token or a password."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _forms(secret: str) -> set[bytes]:
    """The secret as it may be written out: raw, percent-encoded, base64 (alone
    and inside ``user:secret``, as HTTP basic auth sends it)."""
    raw = secret.encode()
    forms = {raw, quote(secret, safe="").encode()}
    for text in (raw, b"user:" + raw):
        encoded = base64.b64encode(text)
        # Skip the first and last 4 characters: their base64 depends on what surrounds.
        forms.add(encoded[4:-4])
    return forms


def _pieces(secret: str) -> set[bytes]:
    pieces = set()
    for form in _forms(secret):
        if len(form) <= WINDOW:
            pieces.add(form)
        else:
            pieces.update(form[i:i + WINDOW] for i in range(len(form) - WINDOW + 1))
    return pieces


def leaks(secret: str, data: bytes) -> list[bytes]:
    """The pieces of ``secret`` found in ``data`` (empty when none)."""
    return sorted(piece for piece in _pieces(secret) if piece in data)


def _files(paths: Iterable[Path], ignore: Sequence[Path]) -> Iterator[Path]:
    skip = {os.path.realpath(p) for p in ignore}
    for path in paths:
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*"))
        for candidate in candidates:
            if candidate.is_file() and not candidate.is_symlink() and \
                    os.path.realpath(candidate) not in skip:
                yield candidate


def assert_no_secret(secret: str, texts: Mapping[str, str | bytes] = {},
                     scan: Iterable[Path] = (), ignore: Sequence[Path] = ()) -> None:
    """Fail when a piece of ``secret`` is in one of ``texts`` ({what: text}) or
    in any file under ``scan`` (folders recursively: reports, the catalog and its
    WAL and lock files) other than those in ``ignore`` (the inventory the test
    wrote the secret into, on purpose)."""
    found = []
    for what, text in texts.items():
        hit = leaks(secret, text.encode() if isinstance(text, str) else text)
        if hit:
            found.append(f"{what}: {hit[0]!r}")
    for file in _files(scan, ignore):
        hit = leaks(secret, file.read_bytes())
        if hit:
            found.append(f"{file}: {hit[0]!r}")
    assert not found, "secret leaked into " + "; ".join(found)


def run_with_secret(args: Sequence[str], secret: str, env: Mapping[str, str] = {},
                    scan: Iterable[Path] = (), ignore: Sequence[Path] = (),
                    cwd: Path | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Run ``threetwoone ARGS`` and ``threetwoone --debug ARGS`` in real processes
    with ``env`` added to the environment, and assert that ``secret`` appears in
    neither's stdout or stderr nor in any file under ``scan`` afterwards.  Returns
    both results (plain first) for the test's own assertions."""
    scan = list(scan)
    runs = []
    for debug in ((), ("--debug",)):
        run = run_subprocess(*debug, *args, env={**os.environ, **env}, cwd=cwd)
        label = "threetwoone " + " ".join((*debug, *args))
        assert_no_secret(secret, {f"stdout of {label}": run.stdout,
                                  f"stderr of {label}": run.stderr}, scan, ignore)
        runs.append(run)
    return runs
