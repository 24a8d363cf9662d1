"""The SFTP backend against a real OpenSSH sshd on loopback (servers/sshd.py)."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from backends.conftest_sftp import SftpFactory, make_location
from backends.contract import (
    BackendContract,
    DiskStorage,
    files_of,
    fresh_name,
    hash_all,
    remove_tree,
)
from servers.sshd import SSHHome, SSHServer
from threetwoone.backends import Backend
from threetwoone.backends.interface import (
    CopyFailed,
    Entry,
    EntryKind,
    LocationUnreachable,
    NotAFolder,
    WalkProblem,
)
from threetwoone.backends.sftp import VIA_STREAM, SFTPBackend
from threetwoone.backends.ssh import remote_hash
from threetwoone.checksums import hash_bytes
from threetwoone.inventory import Location

ODD_NAMES: dict[str, bytes] = {
    "plain.txt": b"plain",
    "with space.txt": b"space",
    "it's quoted.txt": b"quote",
    'double "quoted".txt': b"dquote",
    "new\nline.txt": b"newline",
    "back\\slash.txt": b"backslash",
    "$(touch pwned).txt": b"command substitution",
    "`touch pwned2`; touch pwned3 &.txt": b"backticks",
    "-n leading dash": b"dash",
    "-": b"a file named like stdin",
    "tab\there": b"tab",
    os.fsdecode(b"latin1-\xe9t\xe9.bin"): b"not utf-8",
    "sub dir/nested $HOME.txt": b"nested",
    "sub dir/deeper/x": b"x" * 300_000,
}


def write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = os.path.join(os.fsencode(root), os.fsencode(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)


@pytest.fixture
def odd_tree(sshd: SSHServer) -> Path:
    root = sshd.data_dir("odd")
    write(root / "ds", ODD_NAMES)
    # The login user may write here: if a name were executed, `touch` would succeed.
    for folder in (root / "ds", root / "ds" / "sub dir"):
        folder.chmod(0o777)
    return root


# -- listing ---------------------------------------------------------------


def test_walk_lists_files_links_and_special_files_sorted(sshd: SSHServer,
                                                         sftp_backend: SftpFactory) -> None:
    root = sshd.data_dir("walk")
    write(root / "ds", {"b.txt": b"b", "a/z.txt": b"zz", "a.txt": b"a"})
    os.symlink("/etc/passwd", root / "ds" / "link-out")
    os.symlink("a", root / "ds" / "link-dir")  # a link to a folder: listed, not entered
    os.mkfifo(root / "ds" / "fifo")
    backend = sftp_backend(root)
    entries = list(backend.walk("ds"))
    assert [(e.path, e.kind) for e in entries if isinstance(e, Entry)] == [
        ("a/z.txt", EntryKind.FILE), ("a.txt", EntryKind.FILE), ("b.txt", EntryKind.FILE),
        ("fifo", EntryKind.SPECIAL), ("link-dir", EntryKind.SYMLINK),
        ("link-out", EntryKind.SYMLINK)]
    files = files_of(backend, "ds")
    assert {e.path: e.size for e in files.values()} == {"a/z.txt": 2, "a.txt": 1, "b.txt": 1}
    mtime = (root / "ds" / "a.txt").stat().st_mtime_ns
    entry = files["a.txt"]
    assert entry.mtime_ns == (mtime // 1_000_000_000) * 1_000_000_000


def test_walk_keeps_odd_names_exactly(odd_tree: Path, sftp_backend: SftpFactory) -> None:
    backend = sftp_backend(odd_tree)
    paths = set(files_of(backend, "ds"))
    assert paths == set(ODD_NAMES)
    # Non-UTF-8 names survive a round trip through os.fsdecode/fsencode.
    assert os.fsencode(os.fsdecode(b"latin1-\xe9t\xe9.bin")) in {os.fsencode(p) for p in paths}



def _depth_first(top: Path) -> list[str]:
    """The walk's order, computed locally: each folder sorted by name, a
    subfolder walked where its name comes."""
    out: list[str] = []

    def visit(folder: Path, prefix: str) -> None:
        for name in sorted(os.listdir(folder)):
            path = folder / name
            if path.is_dir() and not path.is_symlink():
                visit(path, prefix + name + "/")
            else:
                out.append(prefix + name)

    visit(top, "")
    return out


def test_walk_of_many_folders_keeps_depth_first_order(sshd: SSHServer,
                                                      sftp_backend: SftpFactory,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders are listed many at a time and in rounds; the order is still
    the depth-first one, also when a folder holds more names than one READDIR
    answers (OpenSSH sends 100 at most), and when listings read ahead are
    dropped to keep memory flat."""
    from threetwoone.backends.sftp import lister as sftp_module

    root = sshd.data_dir("deep")
    files = {f"r{i % 3}/{'ab'[i % 2]}{i % 11}/x{i % 4}/f{i}": b"%d" % i for i in range(700)}
    files.update({f"wide/{i:04d}": b"w" for i in range(450)})
    files.update({"r1.txt": b"top", "r1-/a": b"dash sorts before slash"})
    write(root / "ds", files)
    (root / "ds" / "empty").mkdir()
    defaults = (sftp_module.LIST_AHEAD, sftp_module.LIST_ROUND_FOLDERS,
                sftp_module.LIST_AHEAD_NAMES)
    # The third: so few names may be held that folders read ahead are dropped
    # and listed again.
    for ahead, per_round, names in (defaults, (3, 5, defaults[2]), (64, 1024, 50)):
        monkeypatch.setattr(sftp_module, "LIST_AHEAD", ahead)
        monkeypatch.setattr(sftp_module, "LIST_ROUND_FOLDERS", per_round)
        monkeypatch.setattr(sftp_module, "LIST_AHEAD_NAMES", names)
        entries = list(sftp_backend(root).walk("ds"))
        assert [e.path for e in entries] == _depth_first(root / "ds")
        assert {e.path: e.size for e in entries if isinstance(e, Entry)} == {
            name: len(data) for name, data in files.items()}


def test_walk_survives_a_dropped_connection(sshd_private: SSHServer, ssh_home: SSHHome,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from threetwoone.backends.sftp import lister as sftp_module

    monkeypatch.setattr(sftp_module, "LIST_ROUND_FOLDERS", 4)
    ssh_home.trust(sshd_private.known_hosts())
    root = sshd_private.data_dir("walkdrop")
    write(root / "ds", {f"d{i:02d}/f": b"x" for i in range(40)})
    backend = SFTPBackend("b", make_location(sshd_private, root))
    backend.connect()
    try:
        seen = []
        for entry in backend.walk("ds"):
            seen.append(entry)
            if len(seen) == 10:
                assert sshd_private.kill_sessions() > 0
        assert backend.conn.generation == 2  # reconnected once
    finally:
        backend.close()
    assert [e.path for e in seen] == [f"d{i:02d}/f" for i in range(40)]

def test_unreadable_folder_is_a_walk_problem(sshd: SSHServer,
                                             sftp_backend: SftpFactory) -> None:
    root = sshd.data_dir("closed")
    write(root / "ds", {"ok.txt": b"ok", "locked/secret.txt": b"s"})
    (root / "ds" / "locked").chmod(0)
    try:
        entries = list(sftp_backend(root).walk("ds"))
    finally:
        (root / "ds" / "locked").chmod(0o755)
    problems = [e for e in entries if isinstance(e, WalkProblem)]
    assert [(p.path, p.detail) for p in problems] == [("locked", "permission denied")]
    assert [e.path for e in entries if isinstance(e, Entry)] == ["ok.txt"]


def test_stat_root_identity_and_missing(sshd: SSHServer, sftp_backend: SftpFactory) -> None:
    root = sshd.data_dir("ident")
    (root / "ds").mkdir(exist_ok=True)
    if not (root / "alias").exists():
        os.symlink("ds", root / "alias")
    backend = sftp_backend(root)
    real = backend.stat_root("ds")
    via_link = backend.stat_root("alias")
    assert real is not None and via_link is not None
    assert real.identity == via_link.identity == f"sftp:127.0.0.1:{sshd.port}:{root}/ds"
    assert backend.stat_root("not-there") is None
    (root / "file").write_bytes(b"")
    with pytest.raises(NotAFolder, match="is a file, not a folder"):
        backend.stat_root("file")


def test_missing_location_root_is_unreachable(sshd: SSHServer,
                                              sftp_backend: SftpFactory) -> None:
    with pytest.raises(LocationUnreachable, match=r"location root .*/gone: no such file"):
        sftp_backend(sshd.workdir / "gone")


# -- hashing -----------------------------------------------------------------


def test_remote_and_streamed_hashes_agree_on_odd_names_and_nothing_executes(
        sshd: SSHServer, odd_tree: Path, sftp_backend: SftpFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    algorithms = ["xxh3_128", "md5"]
    commands: list[bytes] = []
    original = paramiko.Channel.exec_command

    def recording(self: paramiko.Channel, command: bytes) -> None:
        commands.append(command)
        original(self, command)

    monkeypatch.setattr(paramiko.Channel, "exec_command", recording)
    remote = hash_all(sftp_backend(odd_tree), "ds", algorithms)
    # Only the fixed command lines ran: no file name is ever part of one.
    assert set(commands) == {b"xargs -0 xxhsum -H2 --", b"xargs -0 md5sum --"}
    streamed = hash_all(sftp_backend(odd_tree, sftp_only=True), "ds", algorithms)
    expected = {name: hash_bytes(data, algorithms) for name, data in ODD_NAMES.items()}
    assert {p: dict(r.digests) for p, r in remote.items()} == expected
    assert {p: dict(r.digests) for p, r in streamed.items()} == expected
    # Names with a newline or a backslash are never given to a remote tool.
    assert {p for p, r in remote.items() if r.via == VIA_STREAM} == {"new\nline.txt",
                                                                     "back\\slash.txt"}
    assert {r.via for r in remote.values()} == {"remote xxhsum -H2, remote md5sum", VIA_STREAM}
    assert {r.via for r in streamed.values()} == {VIA_STREAM}
    assert all(r.method == "full" and r.error is None for r in remote.values())
    assert {p: r.size for p, r in remote.items()} == {n: len(d) for n, d in ODD_NAMES.items()}
    # Had a name been run by the remote shell, `touch` would have left a file.
    left = {p.name for p in odd_tree.rglob("*pwned*") if p.name.startswith("pwned")}
    home = Path(os.path.expanduser(f"~{sshd.user}"))
    left |= {p.name for p in home.glob("pwned*")} if home.is_dir() else set()
    assert left == set()


def test_a_partial_answer_is_confirmed_not_taken_as_is(
        sshd: SSHServer, sftp_backend: SftpFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tool that exits 1 (it could not read a file) has its lines checked by a
    second run of those files alone; lines that second run does not repeat (a
    lying or confused tool: a fault a real xxhsum cannot be made to produce) are
    not trusted, and those files are read over SFTP."""
    from threetwoone.backends.ssh.pool import Connection

    root = sshd.data_dir("partial")
    files = {"a": b"aaa", "b": b"bbb", "c": b"ccc"}
    write(root / "ds", files)
    original = Connection.run
    calls: list[bytes] = []

    def lying_once(self: Connection, command: bytes, timeout: float, stdin: bytes = b""
                   ) -> tuple[int, bytes, bytes]:
        status, out, err = original(self, command, timeout, stdin)
        calls.append(command)
        if len(calls) == 2:  # the first batch (call 1 is the probe)
            out = out.replace(hash_bytes(b"bbb", ["xxh3_128"])["xxh3_128"].encode(), b"0" * 32)
            return 1, out, err
        return status, out, err

    monkeypatch.setattr(Connection, "run", lying_once)
    results = hash_all(sftp_backend(root), "ds", ["xxh3_128"])
    assert {p: dict(r.digests) for p, r in results.items()} == {
        name: hash_bytes(data, ["xxh3_128"]) for name, data in files.items()}
    assert results["b"].via == VIA_STREAM
    assert results["a"].via == results["c"].via == "remote xxhsum -H2"
    assert len(calls) == 3  # probe, batch, confirmation


def test_remote_hash_false_streams(sshd: SSHServer, sftp_backend: SftpFactory) -> None:
    root = sshd.data_dir("noremote")
    write(root / "ds", {"a": b"a"})
    results = hash_all(sftp_backend(root, remote_hash=False), "ds", ["xxh3_128"])
    assert results["a"].via == VIA_STREAM
    assert results["a"].digests == hash_bytes(b"a", ["xxh3_128"])



def test_streaming_large_files_and_short_reads(sshd: SSHServer, sftp_backend: SftpFactory,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Files of many READs, empty files and exact multiples of the read size
    hash right, also when the server answers each READ with less than asked
    (OpenSSH caps a READ at 255 KiB: asking for 300 KiB makes it do that)."""
    from threetwoone.backends.sftp import streamer as sftp_module

    root = sshd.data_dir("bigstream")
    size = sftp_module.READ_SIZE
    files = {"empty": b"", "one": b"1", "exact": os.urandom(2 * size),
             "odd": os.urandom(5 * size + 12345), "big": os.urandom(9 * 1024 * 1024 + 7)}
    write(root / "ds", files)
    expected = {name: hash_bytes(data, ["xxh3_128", "md5"]) for name, data in files.items()}
    for read_size, inflight in ((size, sftp_module.INFLIGHT_BYTES), (300 * 1024, 1 << 20)):
        monkeypatch.setattr(sftp_module, "READ_SIZE", read_size)
        monkeypatch.setattr(sftp_module, "INFLIGHT_BYTES", inflight)
        results = hash_all(sftp_backend(root, sftp_only=True), "ds", ["xxh3_128", "md5"])
        assert {p: dict(r.digests) for p, r in results.items()} == expected
        assert {p: r.size for p, r in results.items()} == {n: len(d) for n, d in files.items()}


@pytest.mark.parametrize("how", ["streamed", "host hashes"])
@pytest.mark.parametrize("change", ["grown", "shrunk", "rewritten", "now a folder"])
def test_file_changed_after_listing_is_unreadable_not_corrupt(
        sshd: SSHServer, sftp_backend: SftpFactory, change: str, how: str) -> None:
    """Both read paths check the bytes against the listing: a tool on the host
    reads whatever the file holds now, so its files are stat'ed after it."""
    root = sshd.data_dir("changed-" + change.replace(" ", "-") + "-" + how.replace(" ", "-"))
    write(root / "ds", {"a": b"a" * 1000, "f": b"f" * 300_000})
    backend = sftp_backend(root, sftp_only=how == "streamed")
    entries = list(files_of(backend, "ds").values())
    target = root / "ds" / "f"
    if change == "grown":
        target.write_bytes(b"f" * 300_001)
    elif change == "shrunk":
        target.write_bytes(b"f" * 299_999)
    elif change == "rewritten":  # same size, later mtime
        target.write_bytes(b"g" * 300_000)
        os.utime(target, (target.stat().st_atime, target.stat().st_mtime + 5))
    else:
        target.unlink()
        target.mkdir()
    results = {r.path: r for r in backend.hash_files("ds", entries, ["xxh3_128"])}
    assert results["a"].digests == hash_bytes(b"a" * 1000, ["xxh3_128"])
    assert results["a"].via == (VIA_STREAM if how == "streamed" else "remote xxhsum -H2")
    assert results["f"].digests == {}
    expected = ("no longer a regular file (not read)" if change == "now a folder"
                else "changed while being read")
    assert results["f"].error == expected


def _eof_early(monkeypatch: pytest.MonkeyPatch, path: str, times: int) -> list[int]:
    """Make the server answer the READ of ``path`` at offset 2 * READ_SIZE with
    end of file, ``times`` times, while its FSTAT still shows the listed size
    (a cut or faulty server: OpenSSH reads a regular file to its end)."""
    from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS

    from threetwoone.backends.sftp import streamer as sftp_module

    original = sftp_module._Streamer._answer
    faults: list[int] = []

    def answer(self: Any, kind: int, rid: int, body: memoryview) -> None:
        file, what, offset, _length = self.expect[rid]
        if (what == CMD_READ and kind == CMD_DATA and file.entry.path == path
                and offset == 2 * sftp_module.READ_SIZE and len(faults) < times):
            faults.append(offset)
            eof = struct.pack(">I", 1) + struct.pack(">I", 3) + b"EOF" + struct.pack(">I", 0)
            return original(self, CMD_STATUS, rid, memoryview(eof))
        return original(self, kind, rid, body)

    monkeypatch.setattr(sftp_module._Streamer, "_answer", answer)
    return faults


@pytest.mark.parametrize("times", [1, 2])
def test_a_read_that_ends_early_is_read_again_then_unreadable(
        sshd: SSHServer, sftp_backend: SftpFactory, monkeypatch: pytest.MonkeyPatch,
        times: int) -> None:
    """Fewer bytes than listed, the file unchanged: a failed read, never
    corruption.  It is read once more; if that ends early too, it is unreadable."""
    from threetwoone.backends.sftp import streamer as sftp_module

    root = sshd.data_dir(f"eof-early-{times}")
    data = os.urandom(5 * sftp_module.READ_SIZE)
    write(root / "ds", {"f": data, "g": b"g"})
    faults = _eof_early(monkeypatch, "f", times)
    results = hash_all(sftp_backend(root, sftp_only=True), "ds", ["xxh3_128"])
    assert len(faults) == times
    assert results["g"].digests == hash_bytes(b"g", ["xxh3_128"])
    if times == 1:
        assert results["f"].error is None
        assert results["f"].digests == hash_bytes(data, ["xxh3_128"])
    else:
        assert results["f"].digests == {}
        assert results["f"].error == (f"read ended early ({2 * sftp_module.READ_SIZE:,} of "
                                      f"{len(data):,} bytes)")


def test_open_read_that_ends_early_raises(sshd: SSHServer, sftp_backend: SftpFactory,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A producer manifest cut short is an error, never a shorter manifest."""
    root = sshd.data_dir("open-read-short")
    write(root / "ds", {"checksums.md5": b"x" * 100_000})
    original = paramiko.SFTPFile.read
    served = [0]

    def short(self: paramiko.SFTPFile, size: int | None = None) -> bytes:
        data = original(self, size)[:max(0, 60_000 - served[0])]
        served[0] += len(data)
        return data

    monkeypatch.setattr(paramiko.SFTPFile, "read", short)
    with pytest.raises(OSError, match=r"read ended early \(60,000 of 100,000 bytes\)"), \
            sftp_backend(root).open_read("ds", "checksums.md5") as handle:
        handle.read()

@pytest.mark.parametrize("swapped", ["file", "folder"])
def test_open_read_through_a_symlink_swapped_in_raises(sshd: SSHServer,
                                                       sftp_backend: SftpFactory,
                                                       swapped: str) -> None:
    """A producer manifest (or its folder) swapped after the listing for a
    symlink to a file outside the copy: SFTP opens through it, so closing
    the file finds what was read is not the copy's, and raises."""
    root = sshd.data_dir(f"open-read-swap-{swapped}")
    write(root / "ds", {"meta/checksums.md5": b"right\n"})
    write(root / "elsewhere", {"meta/checksums.md5": b"forged\n"})
    backend = sftp_backend(root)
    assert list(files_of(backend, "ds")) == ["meta/checksums.md5"]
    swap = root / "ds" / "meta" / ("checksums.md5" if swapped == "file" else "")
    swap.rename(swap.with_name(swap.name + ".old"))
    swap.symlink_to(root / "elsewhere" / "meta" / ("checksums.md5" if swapped == "file" else ""))
    with pytest.raises(OSError, match="it or a folder on its path was replaced by a symlink"), \
            backend.open_read("ds", "meta/checksums.md5") as handle:
        assert handle.read() == b"forged\n"  # read through the link, then refused


def test_sha256_remote_and_adler32_falls_back(sshd: SSHServer,
                                              sftp_backend: SftpFactory) -> None:
    root = sshd.data_dir("algos")
    write(root / "ds", {"a": b"abc"})
    backend = sftp_backend(root)
    sha = hash_all(backend, "ds", ["sha256"])["a"]
    assert sha.via == "remote sha256sum" and sha.digests == hash_bytes(b"abc", ["sha256"])
    adler = hash_all(backend, "ds", ["adler32"])["a"]  # no remote tool for adler32
    assert adler.via == VIA_STREAM and adler.digests == hash_bytes(b"abc", ["adler32"])


def test_many_files_in_batches_with_workers(sshd: SSHServer,
                                            sftp_backend: SftpFactory) -> None:
    root = sshd.data_dir("many")
    files = {f"d{i % 7}/f{i:04d}": os.urandom(i % 50) for i in range(600)}
    write(root / "ds", files)
    expected = {name: hash_bytes(data, ["xxh3_128"]) for name, data in files.items()}
    for sftp_only in (False, True):
        backend = sftp_backend(root, sftp_only=sftp_only)
        results = hash_all(backend, "ds", ["xxh3_128"], workers=4)
        assert {p: dict(r.digests) for p, r in results.items()} == expected


def test_permission_denied_file_is_an_error_not_corrupt(sshd: SSHServer,
                                                        sftp_backend: SftpFactory) -> None:
    root = sshd.data_dir("perm")
    write(root / "ds", {"ok": b"ok", "secret": b"secret"})
    (root / "ds" / "secret").chmod(0)
    try:
        for sftp_only in (False, True):
            results = hash_all(sftp_backend(root, sftp_only=sftp_only), "ds", ["xxh3_128"])
            assert results["secret"].error == "permission denied"
            assert results["secret"].digests == {}
            assert results["ok"].digests == hash_bytes(b"ok", ["xxh3_128"])
    finally:
        (root / "ds" / "secret").chmod(0o644)


def test_file_removed_after_listing_is_an_error(sshd: SSHServer,
                                                sftp_backend: SftpFactory) -> None:
    root = sshd.data_dir("vanish")
    write(root / "ds", {"a": b"a", "b": b"b"})
    backend = sftp_backend(root)
    entries = list(files_of(backend, "ds").values())
    (root / "ds" / "b").unlink()
    results = {r.path: r for r in backend.hash_files("ds", entries, ["xxh3_128"])}
    assert results["b"].error and "no such file" in results["b"].error
    assert results["a"].via == "remote xxhsum -H2"


def test_nothing_is_written_on_the_remote(sshd: SSHServer, odd_tree: Path,
                                          sftp_backend: SftpFactory) -> None:
    def snapshot() -> dict[bytes, tuple[int, int, int]]:
        out = {}
        for folder, dirs, names in os.walk(os.fsencode(odd_tree)):
            for name in dirs + names:
                st = os.lstat(os.path.join(folder, name))
                out[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns, st.st_mode)
        return out

    before = snapshot()
    for sftp_only in (False, True):
        backend = sftp_backend(odd_tree, sftp_only=sftp_only)
        hash_all(backend, "ds", ["xxh3_128", "sha256"])
        backend.stat_root("ds")
    assert snapshot() == before


# -- remote output parsing (pure) ---------------------------------------------


def test_parse_output_takes_only_lines_for_asked_paths_in_order() -> None:
    paths = [b"/d/a", b"/d/-", b"/d/sub/c d"]
    output = b"%s  /d/a\n%s */d/-\n%s  /d/sub/c d\n" % (b"1" * 32, b"2" * 32, b"3" * 32)
    assert remote_hash.parse_output(output, paths, 32) == {
        0: "1" * 32, 1: "2" * 32, 2: "3" * 32}
    # "a" failed: its line is missing, the others are parsed (and then confirmed).
    assert remote_hash.parse_output(b"%s  /b\n" % (b"2" * 32), [b"/a", b"/b"], 32) == {
        1: "2" * 32}
    # Out of order, twice, or a path never asked: nothing is trusted.
    two = b"%s  /b\n%s  /a\n" % (b"2" * 32, b"1" * 32)
    assert remote_hash.parse_output(two, [b"/a", b"/b"], 32) is None
    twice = b"%s  /a\n%s  /a\n" % (b"1" * 32, b"1" * 32)
    assert remote_hash.parse_output(twice, [b"/a", b"/b"], 32) is None
    assert remote_hash.parse_output(b"%s  /q\n" % (b"1" * 32), [b"/a"], 32) is None
    assert remote_hash.parse_output(b"%s  a\n" % (b"1" * 32), [b"/a"], 32) is None
    # Escaped forms (coreutils' leading backslash) are never expected.
    assert remote_hash.parse_output(b"\\%s  /a\n" % (b"1" * 32), [b"/a"], 32) is None
    # A login banner, a cut last line, upper case or the wrong digest length
    # (an xxhsum without -H2 printing XXH64): nothing is trusted.
    assert remote_hash.parse_output(b"Welcome!\n%s  /a\n" % (b"1" * 32), [b"/a"], 32) is None
    assert remote_hash.parse_output(b"%s  /a" % (b"1" * 32), [b"/a"], 32) is None
    assert remote_hash.parse_output(b"%s  /a\n" % (b"A" * 32), [b"/a"], 32) is None
    assert remote_hash.parse_output(b"%s  /a\n" % (b"1" * 16), [b"/a"], 32) is None


def test_forged_name_cannot_lend_a_digest_to_another_file() -> None:
    """The name ``p`` + newline + ``<digest>  q`` is not hashable, so it is never
    asked; its line would be two lines, the second naming ``q``."""
    forged = b"/d/p\n" + b"2" * 32 + b"  /d/q"
    assert not remote_hash.hashable(forged)
    assert not remote_hash.hashable(b"/back\\slash") and not remote_hash.hashable(b"/cr\r")
    assert not remote_hash.hashable(b"-") and not remote_hash.hashable(b"relative")
    assert remote_hash.hashable(b"/it's $(x) `y`; | > \t \xff")


def test_only_a_complete_answer_with_status_0_is_accepted() -> None:
    assert remote_hash.accept(0, {0: "1", 1: "2"}, 2)
    assert not remote_hash.accept(1, {0: "1", 1: "2"}, 2)  # a partial answer
    assert not remote_hash.accept(123, {0: "1", 1: "2"}, 2)  # xargs: a run failed
    assert not remote_hash.accept(-1, {0: "1", 1: "2"}, 2)  # killed, no status
    assert not remote_hash.accept(0, {0: "1"}, 2)  # a path not accounted for
    assert not remote_hash.accept(0, None, 2)


def test_probe_requires_the_known_empty_digest_alone_and_status_0() -> None:
    xxh = remote_hash.TOOLS["xxh3_128"]
    good = b"99aa06d3014798d86001c324468d497f  /dev/null\n"
    assert remote_hash.probe_ok(xxh, 0, good)
    assert not remote_hash.probe_ok(xxh, 1, good)
    assert not remote_hash.probe_ok(xxh, 0, b"This account is restricted\n" + good)
    assert not remote_hash.probe_ok(xxh, 0, b"ef46db3751d8e999  /dev/null\n")  # XXH64
    assert not remote_hash.probe_ok(xxh, 0, b"99aa06d3014798d86001c324468d497f  stdin\n")
    assert not remote_hash.probe_ok(remote_hash.TOOLS["md5"], 0, good)


def test_commands_are_fixed_plain_words_and_paths_go_to_stdin() -> None:
    """No shell (sh, bash, dash, zsh, fish, tcsh) gives plain words a meaning;
    the names never appear in a command line at all."""
    for tool in remote_hash.TOOLS.values():
        command = remote_hash.batch_command(tool)
        assert command == b"xargs -0 " + tool.command.encode() + b" --"
        assert set(command) <= set(b"abcdefghijklmnopqrstuvwxyzH0123456789 -")
    paths = [b"/d/$(id)", b"/d/it's", b"/d/\xff"]
    assert remote_hash.batch_input(paths) == b"/d/$(id)\0/d/it's\0/d/\xff\0"


def test_batches_respect_limits() -> None:
    items = [remote_hash.Item(i, b"/f%d" % i, 10) for i in range(10)]
    sizes = [len(b) for b in remote_hash.batches(items, max_files=4)]
    assert sizes == [4, 4, 2]
    assert [len(b) for b in remote_hash.batches(items, max_bytes=25)] == [2, 2, 2, 2, 2]
    assert [len(b) for b in remote_hash.batches(items, max_input=12)] == [3, 3, 3, 1]


# -- host keys and authentication -------------------------------------------------


def test_unknown_host_key_is_refused_with_fingerprint_and_how_to_trust(
        sshd: SSHServer, ssh_home: SSHHome) -> None:
    backend = SFTPBackend("backup", make_location(sshd, sshd.workdir))
    with pytest.raises(LocationUnreachable) as info:
        backend.connect()
    message = str(info.value)
    assert "\n" not in message
    assert "is not known" in message
    fingerprint = _fingerprint(sshd.workdir / "host_ed25519.pub")
    assert fingerprint in message
    assert f"ssh-keyscan -p {sshd.port} -t ed25519 127.0.0.1 >> " in message


def test_changed_host_key_is_refused(sshd: SSHServer, ssh_home: SSHHome) -> None:
    other = sshd.host_keys["other-ed25519"]
    ssh_home.trust(f"[127.0.0.1]:{sshd.port} {other}\n")
    backend = SFTPBackend("backup", make_location(sshd, sshd.workdir))
    with pytest.raises(LocationUnreachable, match="has CHANGED") as info:
        backend.connect()
    assert _fingerprint(sshd.workdir / "other_ed25519.pub") in str(info.value)
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in str(info.value)


def test_revoked_host_key_is_refused(sshd: SSHServer, ssh_home: SSHHome) -> None:
    ssh_home.trust(sshd.known_hosts())
    ssh_home.trust(f"@revoked * {sshd.host_keys['ed25519']}\n")
    with pytest.raises(LocationUnreachable, match="@revoked"):
        SFTPBackend("backup", make_location(sshd, sshd.workdir)).connect()


def test_known_hosts_key_from_inventory_hashed_and_rsa_only(
        sshd: SSHServer, ssh_home: SSHHome, tmp_path: Path) -> None:
    known = tmp_path / "inventory_known_hosts"
    known.write_text(sshd.known_hosts(keytypes=("rsa",)))
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True,
                   capture_output=True)
    assert "127.0.0.1" not in known.read_text()  # hashed names only
    backend = SFTPBackend("backup", make_location(sshd, sshd.workdir, known_hosts=str(known)))
    try:
        backend.connect()  # the server prefers Ed25519; we ask for the RSA key we know
        assert backend.stat_root(".") is not None
    finally:
        backend.close()


def test_pinned_host_key(sshd: SSHServer, ssh_home: SSHHome) -> None:
    fingerprint = _fingerprint(sshd.workdir / "host_ed25519.pub")
    for pin in (fingerprint, sshd.host_keys["ed25519"]):
        backend = SFTPBackend("backup", make_location(sshd, sshd.workdir, host_key=pin))
        backend.connect()
        backend.close()
    wrong = _fingerprint(sshd.workdir / "other_ed25519.pub")
    with pytest.raises(LocationUnreachable, match="does not match the inventory's host_key"):
        SFTPBackend("backup", make_location(sshd, sshd.workdir, host_key=wrong)).connect()


def test_pinned_rsa_host_key_is_asked_for_though_the_server_prefers_ed25519(
        sshd: SSHServer, ssh_home: SSHHome) -> None:
    """The server presents Ed25519 unless asked: a pinned RSA key (as a key
    line, or as a fingerprint alone) makes the client ask for RSA."""
    rsa = sshd.host_keys["rsa"]
    for pin in (rsa, _fingerprint(sshd.workdir / "host_rsa.pub"), f"[127.0.0.1]:{sshd.port} {rsa}"):
        backend = SFTPBackend("backup", make_location(sshd, sshd.workdir, host_key=pin))
        try:
            backend.connect()
            transport, _gen = backend.conn.transport
            assert transport.get_remote_server_key().get_name() == "ssh-rsa"
            assert backend.stat_root(".") is not None
        finally:
            backend.close()


def test_host_key_pin_mismatch_says_what_the_server_offered(
        sshd: SSHServer, ssh_home: SSHHome, tmp_path: Path) -> None:
    ed25519 = _fingerprint(sshd.workdir / "host_ed25519.pub")
    rsa = _fingerprint(sshd.workdir / "host_rsa.pub")
    other = _fingerprint(sshd.workdir / "other_ed25519.pub")

    def refusal(pin: str) -> str:
        backend = SFTPBackend("backup", make_location(sshd, sshd.workdir, host_key=pin))
        with pytest.raises(LocationUnreachable) as info:
            backend.connect()
        message = str(info.value)
        assert "\n" not in message and "does not match the inventory's host_key" in message
        return message

    # A fingerprint of no key of the server's: every kind it has was asked for.
    message = refusal(other)
    assert f"ssh-ed25519 {ed25519}" in message and f"ssh-rsa {rsa}" in message
    assert "host key types it offers: " in message and "rsa-sha2-512" in message
    # An Ed25519 key line: only Ed25519 was asked for.
    message = refusal(sshd.host_keys["other-ed25519"])
    assert f"ssh-ed25519 {ed25519}" in message and rsa not in message
    # A kind of key the server does not have.
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "ec")],
                   check=True, capture_output=True)
    message = refusal((tmp_path / "ec.pub").read_text())
    assert "the server has no ecdsa-sha2-nistp256 host key" in message
    assert "ssh-ed25519" in message.split("host key types it offers: ")[1]


def test_wrong_key_is_refused(sshd: SSHServer, trusted_home: SSHHome) -> None:
    location = make_location(sshd, sshd.workdir, identity_file=str(sshd.wrong_key))
    with pytest.raises(LocationUnreachable) as info:
        SFTPBackend("backup", location).connect()
    assert str(info.value) == (f"{sshd.user}@[127.0.0.1]:{sshd.port}: authentication "
                               f"failed (tried {sshd.wrong_key})")


def test_default_key_from_home_is_used(sshd: SSHServer, trusted_home: SSHHome) -> None:
    for suffix in ("", ".pub"):
        target = trusted_home.ssh / f"id_ed25519{suffix}"
        target.write_bytes(Path(f"{sshd.client_key}{suffix}").read_bytes())
        target.chmod(0o600)
    backend = SFTPBackend("backup", make_location(sshd, sshd.workdir, identity_file=None))
    backend.connect()
    backend.close()


def test_ssh_config_alias_and_proxyjump(sshd: SSHServer, trusted_home: SSHHome) -> None:
    trusted_home.config(f"""\
Host backup-alias
    HostName 127.0.0.1
    Port {sshd.port}
    User {sshd.user}
    IdentityFile {sshd.client_key}

Host via-jump
    HostName 127.0.0.1
    Port {sshd.port}
    User {sshd.user}
    IdentityFile {sshd.client_key}
    ProxyJump backup-alias
""")
    root = sshd.data_dir("config")
    write(root / "ds", {"a": b"a"})
    for host in ("backup-alias", "via-jump"):
        location = make_location(sshd, root, host=host, port=None, user=None,
                                 identity_file=None)
        backend = SFTPBackend("backup", location)
        try:
            backend.connect()
            assert backend.target.hostname == "127.0.0.1"
            result = hash_all(backend, "ds", ["xxh3_128"])["a"]
            assert result.digests == hash_bytes(b"a", ["xxh3_128"])
        finally:
            backend.close()


def test_ssh_config_proxycommand(sshd: SSHServer, trusted_home: SSHHome) -> None:
    known = trusted_home.ssh / "known_hosts"
    trusted_home.config(f"""\
Host through-command
    HostName 127.0.0.1
    Port {sshd.port}
    User {sshd.user}
    IdentityFile {sshd.client_key}
    ProxyCommand ssh -q -i {sshd.client_key} -o BatchMode=yes -o UserKnownHostsFile={known} -p {sshd.port} {sshd.user}@127.0.0.1 -W %h:%p
""")  # noqa: E501
    location = make_location(sshd, sshd.workdir, host="through-command", port=None,
                             user=None, identity_file=None)
    backend = SFTPBackend("backup", location)
    try:
        backend.connect()
        assert backend.stat_root(".") is not None
    finally:
        backend.close()


# -- faults ------------------------------------------------------------------------


def test_connection_refused_dns_and_timeout_are_unreachable(
        sshd: SSHServer, trusted_home: SSHHome) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free_port = closed.getsockname()[1]
    with pytest.raises(LocationUnreachable, match="connection refused"):
        SFTPBackend("b", make_location(sshd, "/", port=free_port)).connect()
    with pytest.raises(LocationUnreachable, match="cannot resolve host name"):
        SFTPBackend("b", make_location(sshd, "/", host="no-such-host.invalid")).connect()
    with socket.socket() as silent:  # accepts (kernel backlog) but never speaks SSH
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(LocationUnreachable, match="handshake failed") as info:
            SFTPBackend("b", make_location(sshd, "/", port=port, timeout=0.5)).connect()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("sftp_only", [False, True], ids=["remote-hash", "stream"])
def test_dropped_connection_is_retried_once(sshd_private: SSHServer, ssh_home: SSHHome,
                                            sftp_only: bool) -> None:
    ssh_home.trust(sshd_private.known_hosts())
    root = sshd_private.data_dir("drop")
    files = {f"f{i:03d}": os.urandom(1000 + i) for i in range(600)}
    write(root / "ds", files)
    backend = SFTPBackend("b", make_location(sshd_private, root, sftp_only=sftp_only))
    backend.connect()
    killed: list[int] = []

    def progress(count: int, size: int) -> None:
        if not killed:
            killed.append(sshd_private.kill_sessions())

    try:
        entries = list(files_of(backend, "ds").values())
        results = list(backend.hash_files("ds", entries, ["xxh3_128"], progress=progress))
    finally:
        backend.close()
    assert killed and killed[0] > 0
    assert {r.path: dict(r.digests) for r in results} == {
        name: hash_bytes(data, ["xxh3_128"]) for name, data in files.items()}


@pytest.mark.parametrize("sftp_only", [False, True], ids=["remote-hash", "stream"])
@pytest.mark.parametrize("how", ["sshd-killed", "dropped-twice"])
def test_sshd_killed_mid_hash_is_copy_failed(sshd_private: SSHServer, ssh_home: SSHHome,
                                             sftp_only: bool, how: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Several remote batches, so that work is left when sshd goes away.
    monkeypatch.setattr(remote_hash, "MAX_BATCH_FILES", 256)
    ssh_home.trust(sshd_private.known_hosts())
    root = sshd_private.data_dir("kill")
    write(root / "ds", {f"f{i:03d}": b"%d" % i for i in range(600)})
    backend = SFTPBackend("b", make_location(sshd_private, root, sftp_only=sftp_only))
    backend.connect()
    done: list[int] = []

    def progress(count: int, size: int) -> None:
        done.append(count)
        if how == "sshd-killed" and len(done) == 1:
            sshd_private.stop()
        elif how == "dropped-twice":
            sshd_private.kill_sessions()

    entries = list(files_of(backend, "ds").values())
    try:
        with pytest.raises(CopyFailed) as info:
            # One worker for "dropped-twice": the second drop must hit pending work.
            list(backend.hash_files("ds", entries, ["xxh3_128"], progress=progress,
                                    workers=2 if how == "sshd-killed" else 1))
    finally:
        backend.close()
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{sshd_private.user}@")
    assert "connection lost" in message
    if how == "sshd-killed":
        assert "reconnecting failed" in message
    assert len(done) < len(entries)


def test_paramiko_is_not_imported_for_local_locations(tmp_path: Path) -> None:
    code = ("import sys; from threetwoone.backends import open_backend; "
            "from threetwoone.inventory import Location; "
            f"b = open_backend(Location('l', 'local', 'disk', 's', {{'root': {str(tmp_path)!r}}}));"
            "b.connect(); print('paramiko' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def _fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


@pytest.fixture(autouse=True)
def _no_leftover_modes(sshd_session: SSHServer) -> Iterator[None]:
    yield
    # A failed test must not leave unreadable files that break cleanup.
    for folder, dirs, names in os.walk(sshd_session.workdir / "data"):
        for name in dirs + names:
            path = os.path.join(folder, name)
            if not os.path.islink(path) and stat.S_IMODE(os.lstat(path).st_mode) == 0:
                os.chmod(path, 0o755)


# -- the backend contract (contract.py), with and without a shell -----------------------


class SFTPStorage(DiskStorage):
    """Copies in a folder of the test sshd's, reached as its login account."""

    def __init__(self, server: SSHServer, root: Path, sftp_only: bool) -> None:
        super().__init__()
        self.server, self.root, self.sftp_only = server, root, sftp_only

    def location(self, **settings: Any) -> Location:
        return make_location(self.server, self.root, sftp_only=self.sftp_only, **settings)

    def disk(self, path: str) -> bytes:
        return os.path.join(os.fsencode(self.root), os.fsencode(path))

    def backend_of(self, root: Path) -> Backend:
        return SFTPStorage(self.server, root, self.sftp_only).backend()


class TestSFTPContract(BackendContract):
    """A login shell: files are hashed on the host where a tool can."""

    storage_kind = SFTPStorage
    sftp_only = False

    @pytest.fixture
    def storage(self, sshd: SSHServer, trusted_home: SSHHome) -> Iterator[SFTPStorage]:
        storage = SFTPStorage(sshd, sshd.data_dir(fresh_name("contract")), self.sftp_only)
        yield storage
        storage.close()
        remove_tree(storage.root)


class TestSFTPNoShellContract(TestSFTPContract):
    """``ForceCommand internal-sftp``: no shell, every byte streamed."""

    sftp_only = True
