"""The comparison of a copy with the catalog as a merge of two sorted streams
(listing.py, copymerge.py): the local walk's byte order, listings kept in
memory or in a table alike, a walk out of order never passes, the files
established in one stream or deferred, and what the catalog keeps."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, dataset_of, rot_in_place, run_cli, write_tree
from threetwoone import listing as listing_module
from threetwoone.backends import Entry, EntryKind, WalkProblem
from threetwoone.backends.local import LocalBackend
from threetwoone.inventory import Location

#: Names whose byte order differs from a naive sort: '-' and '.' sort before
#: '/', a space before both, UTF-8 and bytes that are not UTF-8 after ASCII.
ODD: dict[str | bytes, bytes] = {
    "a/x": b"1", "a-b/y": b"2", "a.b/z": b"3", "a b": b"4", "a0": b"5",
    "\u00e9/f": b"6", "\u00e9x": b"7", b"\xe9raw": b"8", b"\xffd/q": b"9",
    "deep/er/and/deeper/f": b"10", "deep/er-/g": b"11", "deep/er.txt": b"12",
    "Z": b"13", "z": b"14",
}


def rows(lab: Lab, location: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(lab.state) as db:
        return db.execute("SELECT * FROM copy_files WHERE copy LIKE ? ORDER BY path",
                          (f"%/{location}/%",)).fetchall()


def test_the_local_walk_yields_paths_in_byte_order(tmp_path: Path) -> None:
    write_tree(tmp_path / "copy", ODD)
    (tmp_path / "copy" / "link").symlink_to("a")
    os.mkfifo(tmp_path / "copy" / "fifo")
    (tmp_path / "copy" / "empty").mkdir()
    backend = LocalBackend("l", Location("l", "local", "disk", "lab", {"root": str(tmp_path)}))
    walked = [os.fsencode(e.path) for e in backend.walk("copy")]
    assert walked == sorted(walked)
    assert sorted(walked) == sorted([os.fsencode(p) for p in ODD] + [b"link", b"fifo"])
    assert LocalBackend.sorted_walk


def walk_of(entries: list[Entry | WalkProblem]) -> Iterator[Entry | WalkProblem]:
    yield from entries


def keyed(db: sqlite3.Connection, entries: list[Entry | WalkProblem], sorted_walk: bool,
          in_table: bool) -> tuple[list[tuple[bytes, Entry]], int, int]:
    from threetwoone.workset import Workset

    listing = Workset(db).begin_copy(walk_of(entries), (), sorted_walk, in_table)
    return list(listing.keyed()), listing.files, listing.bytes


@pytest.mark.parametrize("in_memory", [1000, 3])
def test_an_unsorted_walk_is_sorted_and_a_path_named_twice_kept_once(
        monkeypatch: pytest.MonkeyPatch, in_memory: int) -> None:
    """S3 lists in no guaranteed order; a listing sorts it (in memory or in its
    table) and keeps the last entry of a path named twice, as the table did."""
    monkeypatch.setattr(listing_module, "IN_MEMORY", in_memory)
    walk: list[Entry | WalkProblem] = [
        Entry("b/2", EntryKind.FILE, 2), Entry("a-b", EntryKind.FILE, 1),
        WalkProblem("c", "permission denied"), Entry("a/1", EntryKind.FILE, 5),
        Entry("\u00e9", EntryKind.SYMLINK), Entry("b/2", EntryKind.FILE, 7),
        Entry(os.fsdecode(b"\xff"), EntryKind.FILE, 3)]
    db = sqlite3.connect(":memory:", isolation_level=None)
    got, files, size = keyed(db, walk, sorted_walk=False, in_table=False)
    assert [key for key, _entry in got] == [b"a-b", b"a/1", b"b/2", "\u00e9".encode(), b"\xff"]
    assert dict(got)[b"b/2"].size == 7
    assert (files, size) == (4, 1 + 5 + 7 + 3)
    assert keyed(db, walk, sorted_walk=False, in_table=True)[0] == got


def test_a_sorted_walk_beyond_memory_continues_in_the_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing_module, "IN_MEMORY", 4)
    names = sorted((f"d{i % 3}/f{i:02d}" for i in range(11)), key=os.fsencode)
    walk: list[Entry | WalkProblem] = [Entry(n, EntryKind.FILE, len(n)) for n in names]
    db = sqlite3.connect(":memory:", isolation_level=None)
    got, files, size = keyed(db, walk, sorted_walk=True, in_table=False)
    assert [entry.path for _key, entry in got] == names
    assert (files, size) == (11, sum(len(n) for n in names))
    assert db.execute("SELECT COUNT(*) FROM temp.listing").fetchone()[0] == 7


def damaged_lab(lab: Lab) -> tuple[Path, Path, Path]:
    """Three copies of ODD plus more; after a first audit the tape copy loses a
    file, gains one, one file rots with a new mtime and a folder is renamed."""
    files: dict[str | bytes, bytes] = {
        **ODD, **{f"run/lane{i % 3}/f{i:03d}.fq": os.urandom(200 + i) for i in range(40)}}
    nas, tape, remote = lab.three_copies(files)
    assert lab.audit_json()[0] == 0
    (tape / "run/lane1/f004.fq").unlink()
    (tape / "run/lane0/f999.fq").write_bytes(b"extra")
    rot = tape / "run/lane2/f005.fq"
    rot_in_place(rot)
    os.utime(rot, ns=(0, rot.stat().st_mtime_ns + 10**9))
    os.rename(tape / "a-b", tape / "a-c")
    return nas, tape, remote


def summary(report: dict[str, Any]) -> list[Any]:
    return [(c["location"], c["state"], c["files"], c["verified_files"], c["cached_files"],
             sorted((p["path"], p["problem"], p["detail"]) for p in c["problems"]))
            for c in dataset_of(report, "ds")["copies"]]


@pytest.mark.parametrize("verify", ["changed", "scheduled", "full"])
def test_listings_in_memory_and_in_the_table_give_one_verdict(
        lab: Lab, monkeypatch: pytest.MonkeyPatch, verify: str) -> None:
    damaged_lab(lab)
    code, in_memory = lab.audit_json("--verify", verify)
    tape = copy_by_location(in_memory, "ds", "tape")
    assert (code, tape["state"]) == (1, "corrupt")
    assert tape["files"]["missing"] == 2 and tape["files"]["extra"] == 2
    assert tape["files"]["corrupt"] == 1
    monkeypatch.setattr(listing_module, "IN_MEMORY", 5)
    code_tabled, in_table = lab.audit_json("--verify", verify)
    assert code_tabled == code and summary(in_table) == summary(in_memory)


def test_a_walk_out_of_order_is_an_error_never_a_pass(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that says its walk is sorted and is not: the merge would call
    files missing and extra, or worse; it stops the copy instead."""
    lab.three_copies({f"f{i}": b"x" * i for i in range(10)})
    assert lab.audit_json()[0] == 0
    real = LocalBackend.walk

    def reversed_walk(self: LocalBackend, path: str) -> Iterator[Entry | WalkProblem]:
        items = list(real(self, path))
        return iter(items[::-1] if self.name == "tape" else items)

    monkeypatch.setattr(LocalBackend, "walk", reversed_walk)
    code, report = lab.audit_json("--verify", "changed")
    tape = copy_by_location(report, "ds", "tape")
    assert (code, tape["state"]) == (3, "error")
    assert "not in path order" in tape["detail"]


def test_an_unchanged_nightly_writes_no_file_row(lab: Lab) -> None:
    lab.three_copies({f"d{i % 5}/f{i}": os.urandom(100) for i in range(30)})
    assert lab.audit_json("--verify", "full")[0] == 0
    before = {loc: rows(lab, loc) for loc in ("nas", "tape", "remote")}
    code, report = lab.audit_json("--verify", "changed")
    assert code == 0
    assert all(c["cached_files"] == 30 for c in dataset_of(report, "ds")["copies"])
    assert {loc: rows(lab, loc) for loc in before} == before


def test_rows_of_files_gone_are_forgotten(lab: Lab) -> None:
    nas, tape, _remote = lab.three_copies({f"f{i}": os.urandom(64) for i in range(6)})
    assert lab.audit_json()[0] == 0
    (tape / "f2").unlink()
    (tape / "f3").unlink()
    (tape / "f3").symlink_to("f1")  # not a regular file: not the reference's f3
    lab.audit_json("--verify", "changed")
    assert [os.fsdecode(row[1]) for row in rows(lab, "tape")] == ["f0", "f1", "f4", "f5"]
    # A file the reference drops (accept after it left the primary) leaves no row
    # on the copies that still hold it: they are never read again.
    (nas / "f5").unlink()
    assert lab.audit_json()[0] == 1
    assert run_cli("accept", str(lab.inventory), "ds", "--state",
                   str(lab.state)).exit_code == 0
    assert "f5" not in [os.fsdecode(row[1]) for row in rows(lab, "remote")]


def test_a_changed_file_is_read_once_by_the_fixity_schedule(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything is due; one file also changed: it is read as a change, and the
    schedule (which reads the catalog's rows oldest first) does not read it
    again nor count it twice."""
    _nas, tape, _remote = lab.three_copies({f"f{i:02d}": os.urandom(300) for i in range(20)})
    monkeypatch.setenv("THREETWOONE_NOW", "1800000000")
    assert lab.audit_json("--verify", "full")[0] == 0
    target = tape / "f07"
    os.utime(target, ns=(0, target.stat().st_mtime_ns + 10**9))
    monkeypatch.setenv("THREETWOONE_NOW", str(1_800_000_000 + 40 * 86400))
    code, report = lab.audit_json("--verify", "scheduled")
    copy = copy_by_location(report, "ds", "tape")
    assert code == 0
    assert (copy["verified_files"], copy["cached_files"], copy["files"]["present"]) == \
        (20, 0, 20)


def test_files_of_another_algorithm_are_hashed_after_and_checked_all_the_same(
        lab: Lab) -> None:
    """A producer's md5 manifest names some files; the others are recorded with
    xxh3_128.  The files are handed to the backend in one stream per set of
    algorithms: rot in either set is found, and every file counts once."""
    import hashlib

    files = {f"f{i:02d}": os.urandom(500 + i) for i in range(30)}
    named = {name: data for name, data in files.items() if int(name[1:]) % 3 == 0}
    manifest = "".join(f"{hashlib.md5(data).hexdigest()}  {name}\n"
                       for name, data in sorted(named.items()))
    _nas, tape, _remote = lab.three_copies({**files, "sums.md5": manifest.encode()},
                                           checksums={"file": "sums.md5"})
    # On the first audit the named files have only an md5, the others an
    # xxh3_128: two sets of algorithms, f00 (md5) first, the recorded ones after.
    rot_in_place(tape / "f03")  # named by the manifest
    rot_in_place(tape / "f04")  # recorded
    code, report = lab.audit_json("--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"], copy["files"]["present"]) == (1, "corrupt", 31)
    assert sorted(p["path"] for p in copy["problems"]) == ["f03", "f04"]
    assert copy_by_location(report, "ds", "remote")["verified_files"] == 31


def overdue_by_status(lab: Lab, interval: str) -> dict[str, int]:
    result = run_cli("status", str(lab.inventory), "--state", str(lab.state), "--format",
                     "json", "--fixity-interval", interval)
    return {row["copy"].split("/")[1]: row["overdue_files"]
            for row in json.loads(result.stdout)["copies"]}


def test_overdue_counts_gathered_by_the_audit_are_the_catalogs(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit counts each copy's overdue files as it goes (no second pass
    over the catalog): night after night, capped re-reads, files gone, rot,
    the count equals what ``status`` then finds in the catalog."""
    nas, tape, remote = lab.three_copies({f"d{i % 4}/f{i:02d}": os.urandom(2000 + i)
                                          for i in range(24)})
    day = 86400

    def night(when: int, *args: str, interval: str = "30d") -> None:
        monkeypatch.setenv("THREETWOONE_NOW", str(1_800_000_000 + when * day))
        _code, report = lab.audit_json("--fixity-interval", interval, *args)
        counted = {c["location"]: c["overdue_files"] for c in dataset_of(report, "ds")["copies"]}
        assert counted == overdue_by_status(lab, interval), (when, args)

    night(0, interval="0")  # read just now, and already due
    night(10, "--verify", "changed", interval="5d")
    (tape / "d1/f05").unlink()
    rot_in_place(remote / "d2/f06")
    os.utime(remote / "d2/f06", ns=(0, 10**18))
    night(20, "--max-read", "9000")
    night(45, "--max-read", "20000")
    night(46, "--verify", "full", interval="1d")
    write_tree(nas, {"d0/new": b"new file"})
    night(47, "--verify", "changed")
    night(80, interval="10d")
