"""The md5sum-format reader, against coreutils itself and as a property."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threetwoone import manifest

# Any name coreutils can write: any bytes but NUL, as a path of components
# without "/" inside, none of them "" , "." or "..".
component = st.binary(min_size=1, max_size=40).map(
    lambda b: b.replace(b"\x00", b"_").replace(b"/", b"_")).filter(
    lambda b: b not in (b".", b".."))
names = st.lists(component, min_size=1, max_size=4).map(lambda parts: b"/".join(parts))


@settings(max_examples=400)
@given(st.lists(st.tuples(names, st.binary(min_size=16, max_size=16)), min_size=1,
                max_size=8), st.booleans())
def test_round_trip_of_any_name(entries: list[tuple[bytes, bytes]], binary: bool) -> None:
    written = [manifest.ManifestEntry(os.fsdecode(name), digest.hex())
               for name, digest in entries]
    parsed = manifest.parse(manifest.format_manifest(written, binary), "md5")
    assert [(os.fsencode(e.path), e.digest) for e in parsed] == \
        [(name, digest.hex()) for name, digest in entries]


def test_reads_what_coreutils_md5sum_writes(tmp_path: Path) -> None:
    names = [b"plain.txt", b"with space.txt", b"new\nline.txt", b"back\\slash.txt",
             b"bad\xffbyte.txt", b"both\\and\nnewline", b"star*name", b" leading space"]
    for i, name in enumerate(names):
        (tmp_path / os.fsdecode(name)).write_bytes(bytes([i]) * (i + 1))
    for flag in ([], ["-b"], ["--tag"]):
        out = subprocess.run(["md5sum", *flag, "--", *[os.fsdecode(n) for n in names]],
                             cwd=tmp_path, capture_output=True, check=True).stdout
        parsed = {os.fsencode(e.path): e.digest for e in manifest.parse(out, "md5")}
        for i, name in enumerate(names):
            assert parsed[name] == hashlib.md5(bytes([i]) * (i + 1)).hexdigest(), (flag, name)


def test_sha256sum_and_dot_slash_prefix(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_bytes(b"hello")
    out = subprocess.run("find . -type f -exec sha256sum {} +", shell=True, cwd=tmp_path,
                         capture_output=True, check=True).stdout
    [entry] = manifest.parse(out, "sha256")
    assert entry.path == "d/x"
    assert entry.digest == hashlib.sha256(b"hello").hexdigest()


@pytest.mark.parametrize(("text", "message"), [
    (b"nothex  file\n", "line 1: not '<checksum>  <name>'"),
    (b"# comment\n" + b"a" * 31 + b"  file\n", "line 2: checksum has 31 hex digits"),
    (b"\\" + b"a" * 32 + b"  bad\\qescape\n", "unknown escape"),
    (b"SHA256 (x) = " + b"a" * 64 + b"\n", "a SHA256 line in a md5 manifest"),
])
def test_malformed_lines(text: bytes, message: str) -> None:
    with pytest.raises(manifest.ManifestError, match=message.replace("*", r"\*")):
        manifest.parse(text, "md5")


def test_crlf_manifest() -> None:
    digest = "d41d8cd98f00b204e9800998ecf8427e"
    [entry] = manifest.parse(f"{digest}  empty.txt\r\n".encode(), "md5")
    assert entry.path == "empty.txt"
