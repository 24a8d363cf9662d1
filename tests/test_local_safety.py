"""The local backend reads nothing outside a copy and changes nothing, whatever
is swapped, however deep the tree: end to end through the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, write_tree
from threetwoone.backends import folders
from threetwoone.backends.local import LocalBackend

RIGHT = os.urandom(40_000)
FILES = {"run1/data.bin": RIGHT, "README.txt": b"run 1\n"}


def swap_before_hashing(monkeypatch: pytest.MonkeyPatch, location: str,
                        swap: Any) -> list[str]:
    """Run ``swap()`` once, after ``location``'s copy was listed and just before
    its files are hashed: the deterministic moment a racing process would hit."""
    real = LocalBackend.hash_files
    done: list[str] = []

    def swapping(self: LocalBackend, path: str, entries: Sequence[Any],
                 algorithms: Sequence[str], **kwargs: Any) -> Iterator[Any]:
        if self.name == location and not done:
            swap()
            done.append(path)
        return real(self, path, entries, algorithms, **kwargs)

    monkeypatch.setattr(LocalBackend, "hash_files", swapping)
    return done


def audit_with_swap(lab: Lab, monkeypatch: pytest.MonkeyPatch, swap: Any) -> dict[str, Any]:
    """A full audit with ``swap()`` run on the tape copy after its listing: the
    copy must be error (exit 3), never intact.  Return the tape copy's report."""
    swapped = swap_before_hashing(monkeypatch, "tape", swap)
    code, report = lab.audit_json("--verify", "full")
    assert swapped == ["ds"]
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (3, "error"), copy
    return copy


def test_folder_swapped_for_a_symlink_after_listing_is_not_followed(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy's run1/ rots; a folder outside the copy holds the right bytes.
    Swapping run1/ for a symlink to it between listing and hashing must not
    make the copy intact: that would vouch for bytes that are not in the copy."""
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    (tape / "run1" / "data.bin").write_bytes(bytes(b ^ 1 for b in RIGHT))
    outside = lab.tmp / "elsewhere" / "run1"
    write_tree(outside, {"data.bin": RIGHT})

    def swap() -> None:
        (tape / "run1").rename(lab.tmp / "rotten-run1")
        (tape / "run1").symlink_to(outside)

    copy = audit_with_swap(lab, monkeypatch, swap)
    assert copy["problems"] == [{
        "path": "run1/data.bin", "problem": "unreadable",
        "detail": "folder 'run1' was replaced by a symlink (not followed)"}]


def test_copy_root_swapped_after_listing_is_not_read(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same one level up: the copy's own folder replaced by a link to a
    folder elsewhere holding the right bytes."""
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    (tape / "run1" / "data.bin").write_bytes(bytes(b ^ 1 for b in RIGHT))
    outside = lab.tmp / "elsewhere" / "ds"
    write_tree(outside, FILES)

    def swap() -> None:
        tape.rename(lab.tmp / "rotten-ds")
        tape.symlink_to(outside)

    copy = audit_with_swap(lab, monkeypatch, swap)
    assert "is no longer the folder that was listed" in copy["detail"]


# -- paths longer than PATH_MAX ------------------------------------------------------

#: 24 folders of 200 bytes: about 4,800 bytes below the copy root, past Linux's
#: PATH_MAX (4096), which no single system call may be handed.
DEEP = [f"{i:02d}" + "d" * 198 for i in range(24)]


def write_deep(root: Path, parts: list[str], name: str, data: bytes) -> None:
    """Create parts/name below ``root`` one folder at a time (by descriptor: the
    whole path is too long for any path-based call)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=fd)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
        try:
            os.write(out, data)
        finally:
            os.close(out)
    finally:
        os.close(fd)


@pytest.mark.parametrize("held", [None, 3])
def test_paths_longer_than_path_max_are_audited(lab: Lab, monkeypatch: pytest.MonkeyPatch,
                                                held: int | None) -> None:
    """``held=3``: deeper than the folder descriptors a chain keeps open, so
    shallower folders are dropped and reopened; no descriptor leaks."""
    if held is not None:
        monkeypatch.setattr(folders, "MAX_HELD", held)
    open_fds = len(os.listdir("/proc/self/fd"))
    roots = lab.three_copies({"README.txt": b"top\n", "z/last.txt": b"z"})
    for root in roots:
        write_deep(root, DEEP, "deep.bin", RIGHT)
        # Back up to a folder half way down after the deepest: with held=3 it
        # was dropped on the way down and must be reopened.
        write_deep(root, DEEP[:12], "mid.txt", b"mid")
        write_deep(root, [*DEEP[:12], "side"], "side.txt", b"side")
    deep_path = "/".join([*DEEP, "deep.bin"])
    assert len(os.fsencode(os.path.join(roots[0], deep_path))) > 4096
    code, report = lab.audit_json()
    assert code == 0, report
    for location in ("nas", "tape", "remote"):
        copy = copy_by_location(report, "ds", location)
        assert copy["state"] == "intact" and copy["files"]["present"] == 5
    write_deep(roots[1], DEEP, "deep.bin", bytes(b ^ 1 for b in RIGHT))
    code, report = lab.audit_json("--verify", "full")
    assert code == 1
    copy = copy_by_location(report, "ds", "tape")
    assert copy["state"] == "corrupt"
    assert [(p["path"], p["problem"]) for p in copy["problems"]] == [(deep_path, "corrupt")]
    assert len(os.listdir("/proc/self/fd")) == open_fds


# -- atimes on a strictatime mount -----------------------------------------------------

#: Sets (``set``) or prints (``get``) the atime of every path listed in a file,
#: with stat and utime only: listing a folder would itself move its atime.
ATIME_HELPER = """
import json, os, sys
action, listing = sys.argv[1], sys.argv[2]
paths = json.load(open(listing))
if action == "set":
    for path in paths:
        os.utime(path, ns=(1_000_000_000 * 10**9, os.lstat(path).st_mtime_ns),
                 follow_symlinks=False)
else:
    print(json.dumps({p: os.lstat(p).st_atime_ns for p in paths}))
"""

#: An account without CAP_FOWNER, for the "not the owner" scenario.
NOBODY = ("nobody", "nogroup")


def audit_on_strictatime_mount(lab: Lab, staging: Path, mount: Path, owners: dict[str, str],
                               as_user: str | None, *args: str) -> tuple[int, dict[str, int]]:
    """In a mount namespace of its own: a tmpfs mounted ``strictatime`` (every
    read of a file or folder moves its atime) at ``mount``, the copies from
    ``staging`` copied in, ``owners`` ({top folder: user}) applied, every atime
    set to 2001; then one audit (as ``as_user`` when given), and the atimes."""
    paths = [str(mount / os.path.relpath(os.path.join(d, n), staging))
             for d, dirs, files in os.walk(staging) for n in [*dirs, *files]]
    listing = lab.tmp / "paths.json"
    listing.write_text(json.dumps(paths))
    helper = lab.tmp / "atimes.py"
    helper.write_text(ATIME_HELPER)
    py, q = sys.executable, shlex.quote
    chown = "".join(f"chown -R {q(user)}: {q(str(mount / top))}\n"
                    for top, user in owners.items())
    run_as = (f"setpriv --reuid={NOBODY[0]} --regid={NOBODY[1]} --clear-groups "
              if as_user else "")
    audit = [py, "-m", "threetwoone", "audit", str(lab.inventory), "--state", str(lab.state),
             "--format", "json", "-o", str(lab.state.parent / "report.json"), *args]
    script = (f"set -e\nmount -t tmpfs -o strictatime,mode=0755 t321-atime {q(str(mount))}\n"
              f"cp -a {q(str(staging))}/. {q(str(mount))}/\n{chown}"
              f"{q(py)} {q(str(helper))} set {q(str(listing))}\n"
              f"set +e\n{run_as}{shlex.join(audit)}\necho $? > {q(str(lab.tmp / 'rc'))}\n"
              f"set -e\n{q(py)} {q(str(helper))} get {q(str(listing))}\n")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int((lab.tmp / "rc").read_text()), json.loads(done.stdout)


def strictatime_lab(lab: Lab) -> tuple[Path, Path]:
    """Copies staged in a normal folder, inventory pointing into the mount."""
    staging = lab.tmp / "staging"
    mount = lab.tmp / "mnt"
    mount.mkdir()
    files = {"run1/lane1/a.fq": os.urandom(3000), "run1/lane2/b.fq": os.urandom(300_000),
             "README.txt": b"r"}
    for name in ("nas", "tape", "remote"):
        write_tree(staging / name / "ds", files)
        lab.location(name, media="tape" if name == "tape" else "disk",
                     site="b" if name == "remote" else "a", create=False)
        lab.locations[name]["root"] = str(mount / name)
    lab.dataset("ds", [{"location": n, "path": "ds"} for n in ("nas", "tape", "remote")])
    lab.write()
    lab.state.parent.mkdir()
    lab.state.parent.chmod(0o777)  # the catalog, written by the audit account
    return staging, mount


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_audit_moves_no_atime_on_a_strictatime_mount(open_lab: Lab, jobs: str) -> None:
    lab = open_lab
    staging, mount = strictatime_lab(lab)
    code, atimes = audit_on_strictatime_mount(lab, staging, mount, {}, None, "-j", jobs)
    assert code == 0
    moved = sorted(path for path, atime in atimes.items() if atime != 1_000_000_000 * 10**9)
    assert moved == []
    # the location root, ds, run1, lane1, lane2 and three files per copy
    assert len(atimes) == 3 * 8


@pytest.mark.slow
def test_not_the_owner_falls_back_without_o_noatime(open_lab: Lab) -> None:
    """O_NOATIME needs the owner (or CAP_FOWNER): an audit account that owns one
    copy and only reads the others keeps the atimes of the copy it owns and still
    audits the rest."""
    lab = open_lab
    staging, mount = strictatime_lab(lab)
    code, atimes = audit_on_strictatime_mount(lab, staging, mount, {"nas": NOBODY[0]},
                                              NOBODY[0])
    report = json.loads((lab.state.parent / "report.json").read_text())
    assert code == 0, report
    assert [c["state"] for c in report["datasets"][0]["copies"]] == ["intact"] * 3
    moved = {path for path, atime in atimes.items() if atime != 1_000_000_000 * 10**9}
    assert not {p for p in moved if p.startswith(str(mount / "nas"))}
    # Root's copies were read without O_NOATIME (not permitted): their atimes moved,
    # which shows the mount really is strictatime.
    assert str(mount / "tape" / "ds" / "README.txt") in moved
    assert str(mount / "tape" / "ds" / "run1") in moved


# -- byte counts: a cut read is unreadable, never corrupt ---------------------------------

BIG = os.urandom(2 * 1024 * 1024 + 5)  # more than one 1 MiB read


@pytest.mark.parametrize(("change", "detail"), [
    ("truncate", f"shorter than listed (1000 bytes, listed {len(BIG)})"),
    ("append", f"longer than listed ({len(BIG) + 7} bytes, listed {len(BIG)})"),
    ("rewrite", "modified since it was listed"),
])
def test_file_changed_between_listing_and_reading_is_unreadable(
        lab: Lab, monkeypatch: pytest.MonkeyPatch, change: str, detail: str) -> None:
    """Before: a file truncated after the listing was hashed as it was, and the
    copy called corrupt with "silent corruption, bit rot" (exit 1)."""
    _nas, tape, _remote = lab.three_copies({"big.bin": BIG, "small.txt": b"s"})
    assert lab.audit_json()[0] == 0
    victim = tape / "big.bin"

    def cut() -> None:
        if change == "truncate":
            os.truncate(victim, 1000)
        elif change == "append":
            with open(victim, "ab") as handle:
                handle.write(b"7 bytes")
        else:  # same size, new bytes and mtime
            victim.write_bytes(bytes(b ^ 1 for b in BIG))
            st = victim.stat()
            os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    swapped = swap_before_hashing(monkeypatch, "tape", cut)
    code, report = lab.audit_json("--verify", "full")
    assert swapped == ["ds"]
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (3, "error")
    assert copy["problems"] == [{"path": "big.bin", "problem": "unreadable",
                                 "detail": detail}]


def test_read_that_ends_early_is_unreadable(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read that reports end of file before the size at open, with size and
    mtime unchanged (a flaky network filesystem or disk): a fault no real file
    produces on demand, so the read call is the one thing replaced."""
    from threetwoone import checksums

    _nas, tape, _remote = lab.three_copies({"big.bin": BIG, "small.txt": b"s"})
    assert lab.audit_json()[0] == 0
    victim = (tape / "big.bin").stat().st_ino
    real_read = checksums._readinto

    def eof_after_first_chunk(fd: int, view: memoryview) -> int:
        if os.fstat(fd).st_ino == victim and os.lseek(fd, 0, os.SEEK_CUR) > 0:
            return 0
        return real_read(fd, view)

    monkeypatch.setattr(checksums, "_readinto", eof_after_first_chunk)
    code, report = lab.audit_json("--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (3, "error")
    [problem] = copy["problems"]
    assert problem["problem"] == "unreadable"
    assert problem["detail"] == f"read {1024 * 1024} bytes of {len(BIG)} (shorter than at open)"


def test_file_truncated_while_read_is_unreadable(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from threetwoone import checksums

    _nas, tape, _remote = lab.three_copies({"big.bin": BIG, "small.txt": b"s"})
    assert lab.audit_json()[0] == 0
    victim = tape / "big.bin"
    victim_ino = victim.stat().st_ino
    real_read = checksums._readinto
    cut: list[int] = []

    def read_then_truncate(fd: int, view: memoryview) -> int:
        count = real_read(fd, view)
        if not cut and count and os.fstat(fd).st_ino == victim_ino:
            cut.append(count)
            os.truncate(victim, 10)
        return count

    monkeypatch.setattr(checksums, "_readinto", read_then_truncate)
    code, report = lab.audit_json("--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert cut and (code, copy["state"]) == (3, "error")
    assert copy["problems"] == [{"path": "big.bin", "problem": "unreadable",
                                 "detail": "changed while being read"}]


def test_empty_file_written_to_after_open_is_unreadable(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty file is still read once (a file listed empty that has bytes by
    the time it is read is not hashed as empty)."""
    from threetwoone import checksums
    from threetwoone.backends import localhash

    _nas, tape, _remote = lab.three_copies({"empty.txt": b"", "small.txt": b"s"})
    assert lab.audit_json()[0] == 0
    real_open = checksums.open_regular  # what localhash calls by that name
    victim = (tape / "empty.txt").stat().st_ino

    def open_then_write(path: str | bytes, dir_fd: int | None = None
                        ) -> tuple[int, os.stat_result]:
        fd, st = real_open(path, dir_fd)
        if st.st_ino == victim:
            with open(tape / "empty.txt", "ab") as handle:
                handle.write(b"written after the open")
        return fd, st

    monkeypatch.setattr(localhash, "open_regular", open_then_write)
    code, report = lab.audit_json("--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (3, "error")
    assert copy["problems"] == [{"path": "empty.txt", "problem": "unreadable",
                                 "detail": "changed while being read"}]
