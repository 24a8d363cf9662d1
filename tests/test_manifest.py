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


@pytest.mark.slow
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
    assert entry.path == "./d/x"  # as written; resolving it is a separate step
    assert manifest.resolve(entry.path) == "d/x"
    assert entry.digest == hashlib.sha256(b"hello").hexdigest()


MD5_A = hashlib.md5(b"a").hexdigest()


@pytest.mark.parametrize("line", [
    f"{MD5_A}  a.txt",             # md5sum text mode
    f"{MD5_A} *a.txt",             # md5sum -b
    f"{MD5_A} a.txt",              # md5 -r, many BagIt tools: one space
    f"{MD5_A}\ta.txt",             # a tab as the blank
    f"{MD5_A.upper()}  a.txt",     # upper-case hex
    f"MD5 (a.txt) = {MD5_A}",      # BSD / --tag
    f"MD5 (a.txt)= {MD5_A}",
])
def test_every_line_form_gnu_md5sum_accepts(tmp_path: Path, line: str) -> None:
    """Each form is first proven to be accepted by md5sum -c itself."""
    (tmp_path / "a.txt").write_bytes(b"a")
    if not line.startswith("MD5 (a.txt)="):
        (tmp_path / "m.md5").write_text(line + "\n")
        check = subprocess.run(["md5sum", "-c", "m.md5"], cwd=tmp_path, capture_output=True)
        assert check.returncode == 0, check.stderr
    [entry] = manifest.parse(line.encode() + b"\n", "md5")
    assert (entry.path, entry.digest, entry.algorithm) == ("a.txt", MD5_A, "md5")


def test_bom_crlf_comments_blank_lines_each_line_checked() -> None:
    data = (b"\xef\xbb\xbf# produced by the facility\r\n" + MD5_A.encode()
            + b"  a.txt\r\n\r\n   \r\n# another comment\r\n"
            + MD5_A.upper().encode() + b" *sub/b.txt\r\n")
    entries = manifest.parse(data)
    assert [(e.path, e.digest, e.line) for e in entries] == [
        ("a.txt", MD5_A, 2), ("sub/b.txt", MD5_A, 6)]


def test_no_trailing_newline() -> None:
    [entry] = manifest.parse(f"{MD5_A}  x.fastq.gz".encode())
    assert entry.path == "x.fastq.gz"


def test_name_that_starts_with_a_space_survives_as_md5sum_writes_it() -> None:
    [entry] = manifest.parse(f"{MD5_A}   leading".encode())
    assert entry.path == " leading"


def test_tag_lines_carry_their_own_algorithm() -> None:
    sha = hashlib.sha256(b"a").hexdigest()
    entries = manifest.parse(f"SHA256 (a) = {sha}\nSHA2-384 (b) = {'0' * 96}\n"
                             f"{MD5_A}  c\n".encode(), "md5")
    assert [(e.path, e.algorithm) for e in entries] == [
        ("a", "sha256"), ("b", "sha384"), ("c", "md5")]


@pytest.mark.parametrize(("tool", "algorithm"), [
    ("md5sum", "md5"), ("sha1sum", "sha1"), ("sha224sum", "sha224"),
    ("sha256sum", "sha256"), ("sha384sum", "sha384"), ("sha512sum", "sha512")])
def test_every_coreutils_tool_plain_and_tagged(tmp_path: Path, tool: str,
                                               algorithm: str) -> None:
    (tmp_path / "f").write_bytes(b"payload")
    for flags in ([], ["--tag"]):
        out = subprocess.run([tool, *flags, "f"], cwd=tmp_path, capture_output=True,
                             check=True).stdout
        [entry] = manifest.parse(out, algorithm)
        assert entry.digest == hashlib.new(algorithm, b"payload").hexdigest()
        assert entry.algorithm == algorithm


@pytest.mark.parametrize(("text", "message"), [
    (b"nothex  file\n", "line 1: not '<checksum>  <name>'"),
    (b"# comment\n" + b"a" * 31 + b"  file\n", "line 2: checksum has 31 hex digits"),
    (b"\\" + b"a" * 32 + b"  bad\\qescape\n", "unknown escape"),
    (b"a" * 64 + b"  file\n", "line 1: checksum has 64 hex digits, md5 has 32 "
                               "(a sha256 manifest? set 'algorithm: sha256')"),
    (b"BLAKE2b (x) = " + b"a" * 128 + b"\n", "line 1: unsupported algorithm 'BLAKE2b'"),
    (b"a" * 32 + b"  \n", "line 1: empty file name"),
])
def test_malformed_lines(text: bytes, message: str) -> None:
    with pytest.raises(manifest.ManifestError, match=message.replace("*", r"\*")
                       .replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        manifest.parse(text, "md5")


def test_hashdeep_output_is_refused_by_name(tmp_path: Path) -> None:
    data = (b"%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,filename\n"
            b"## Invoked from: /data\n## $ hashdeep -r .\n##\n"
            b"1," + MD5_A.encode() + b"," + b"0" * 64 + b",/data/a\n")
    with pytest.raises(manifest.ManifestError, match="looks like hashdeep output"):
        manifest.parse(data)


@pytest.mark.parametrize("data", [
    b"//\r\n// File Checksum Integrity Verifier version 2.05.\r\n//\r\n"
    + MD5_A.encode() + b" c:\\data\\a.txt\r\n",
    b'<?xml version="1.0" encoding="utf-8"?><FCIV><FILE_ENTRY><name>a</name></FILE_ENTRY>'
    b"</FCIV>",
])
def test_fciv_output_is_refused_by_name(data: bytes) -> None:
    with pytest.raises(manifest.ManifestError, match="File Checksum Integrity Verifier"):
        manifest.parse(data)


# -- sidecars -------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    MD5_A.encode(),                              # awk '{printf $1}' > f.md5; EGA
    MD5_A.encode() + b"\n",
    MD5_A.upper().encode() + b"\r\n",
    MD5_A.encode() + b"  x.fastq.gz",             # md5sum x.fastq.gz > x.fastq.gz.md5
    MD5_A.encode() + b"  /abs/where/it/was/x.fastq.gz\n",
    b"MD5 (x.fastq.gz) = " + MD5_A.encode() + b"\n",
])
def test_sidecar_forms(content: bytes) -> None:
    entry = manifest.parse_sidecar(content, "run/x.fastq.gz.md5", "md5")
    assert (entry.path, entry.digest) == ("run/x.fastq.gz", MD5_A)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "this one has 0 lines"),
    (MD5_A.encode() + b"  a\n" + MD5_A.encode() + b"  b\n", "has 2 lines"),
    (MD5_A.encode() + b"  other.fastq.gz\n", "names 'other.fastq.gz'"),
    (b"abc\n", "checksum has 3 hex digits"),
])
def test_sidecar_errors(content: bytes, message: str) -> None:
    with pytest.raises(manifest.ManifestError, match=message):
        manifest.parse_sidecar(content, "x.fastq.gz.md5", "md5")


def test_sidecar_target() -> None:
    assert manifest.sidecar_target("a/b/x.bam.gpg.md5") == "a/b/x.bam.gpg"
    with pytest.raises(manifest.ManifestError):
        manifest.sidecar_target("a/.md5")


# -- names to paths -----------------------------------------------------------------

@pytest.mark.parametrize(("name", "base", "strip", "expected"), [
    ("x", "", None, "x"),
    ("./a//b", "", None, "a/b"),
    ("S1/02-FASTQ/r/x.fq.gz", "", None, "S1/02-FASTQ/r/x.fq.gz"),
    ("x.fastq.gz", "S1/run", None, "S1/run/x.fastq.gz"),
    ("../fastq/x.gz", "md5", None, "fastq/x.gz"),          # md5sum -c run in md5/
    ("run1/x", "", "run1/", "x"),
    ("run1/x", "", "run1", "x"),
    ("./run1/sub/x", "", "run1", "sub/x"),
    ("/proj/P1/run1/x", "", "/proj/P1/run1/", "x"),
    ("other/x", "", "run1/", "other/x"),                     # no prefix: kept
])
def test_resolve(name: str, base: str, strip: str | None, expected: str) -> None:
    assert manifest.resolve(name, base, strip) == expected


@pytest.mark.parametrize(("name", "base", "strip", "message"), [
    ("/abs/x", "", None, "absolute name '/abs/x' .remove its prefix with 'strip:'."),
    ("/abs/x", "", "/other/", "absolute name"),
    ("../x", "", None, "leaves the copy"),
    ("a/../../x", "", None, "leaves the copy"),
    ("../../x", "md5", None, "leaves the copy"),
    (".", "", None, "names the copy's root"),
])
def test_resolve_refuses_names_outside_the_copy(name: str, base: str, strip: str | None,
                                                message: str) -> None:
    with pytest.raises(manifest.PathOutside, match=message):
        manifest.resolve(name, base, strip)


def test_manifest_set_conflicts_self_entries_and_agreement() -> None:
    expected = manifest.ManifestSet()
    expected.add("all.md5", "all.md5", "md5", "0" * 32, 1)       # lists itself
    expected.add("all.md5", "a", "md5", MD5_A, 2)
    expected.add("all.md5", "a", "md5", MD5_A, 3)                # same again: fine
    expected.add("S1.md5", "a", "sha256", "1" * 64, 4)           # another algorithm
    expected.add("S1.md5", "b", "md5", "2" * 32, 1)
    expected.add("S2.md5", "b", "md5", "3" * 32, 7)              # contradicts S1.md5
    assert expected.self_entries == 1
    assert expected.files["a"] == {"md5": MD5_A, "sha256": "1" * 64}
    [conflict] = expected.conflicts
    assert str(conflict) == (f"b: md5 {'2' * 32} (S1.md5:1) but {'3' * 32} (S2.md5:7)")
