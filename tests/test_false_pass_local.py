"""No false PASS on local copies: each route to a wrong verdict found by an
adversarial review, reproduced end to end through the CLI (issue 10).

Permission scenarios run the CLI as an unprivileged user (``setpriv`` to
``nobody`` when the tests run as root, as in CI): root reads any file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from conftest import (
    Lab,
    copy_by_location,
    dataset_of,
    run_subprocess,
    run_unprivileged,
    write_tree,
)
from threetwoone import audit as audit_module
from threetwoone import copyaudit
from threetwoone.catalog import exclusive_lock

FILES: dict[str | bytes, bytes] = {
    "lane1/f1.fq": b"ACGT" * 3000,
    "lane1/f2.fq": b"TTGA" * 2000,
    "lane2/f3.fq": b"GGCC" * 1000,
    "README": b"run 1\n",
}


# -- route 1: a failed read is never trusted later ---------------------------------------

@pytest.mark.slow
def test_a_failed_read_invalidates_the_files_verified_row(open_lab: Lab) -> None:
    lab = open_lab
    _nas, tape, _remote = lab.three_copies(FILES)
    assert run_unprivileged(lab)[0] == 0
    victim = tape / "lane1" / "f2.fq"
    victim.chmod(0)  # ctime moves, size and mtime do not: the listing looks unchanged
    code, report = run_unprivileged(lab, "--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (3, "error")
    assert [(p["path"], p["problem"]) for p in copy["problems"]] == \
        [("lane1/f2.fq", "unreadable")]
    # The older "verified ok" row must not vouch for it now: every later run reads
    # it again, and the copy stays "error" until it reads ok.
    for mode in ("changed", "scheduled"):
        code, report = run_unprivileged(lab, "--verify", mode)
        copy = copy_by_location(report, "ds", "tape")
        assert (code, copy["state"]) == (3, "error"), mode
        assert copy["files"]["unreadable"] == 1
        assert dataset_of(report, "ds")["status"] == "unknown"
    victim.chmod(0o644)
    code, report = run_unprivileged(lab, "--verify", "changed")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"], copy["verified_files"]) == (0, "intact", 1)


# -- route 2: a copy that moved is verified in full, and the report says why -----------

def test_moved_local_copy_is_verified_in_full_with_a_warning(lab: Lab) -> None:
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    moved = lab.tmp / "storage" / "tape-migrated"
    shutil.copytree(tape.parent, moved, copy_function=shutil.copy2)
    lab.locations["tape"]["root"] = str(moved)
    code, report = lab.audit_json("--verify", "changed")
    assert code == 0
    copy = copy_by_location(report, "ds", "tape")
    assert (copy["verification"], copy["verified_files"], copy["cached_files"]) == \
        ("full", len(FILES), 0)
    [warning] = [w for w in dataset_of(report, "ds")["warnings"] if "storage" in w]
    assert "tape:ds is not on the storage it was last verified on" in warning
    assert f"folder: {tape} -> {moved / 'ds'}" in warning
    # Verified there now: the next night trusts it again.
    code, report = lab.audit_json("--verify", "changed")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["verification"], copy["cached_files"]) == (0, "cached", len(FILES))
    assert not any("storage" in w for w in dataset_of(report, "ds")["warnings"])


# -- route 3: a cached row counts only against the current reference version ----------

def test_row_verified_against_an_older_reference_is_not_trusted(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """An accept that ran while an audit was checking the tape copy (the lock was
    bypassable; here the accept is run directly, past any lock): the tape's row
    was verified against the old reference, and must not vouch for the file
    against the new one."""
    from threetwoone.audit import AuditOptions, Auditor
    from threetwoone.catalog import Catalog
    from threetwoone.cli import resolve_policies
    from threetwoone.inventory import load_inventory

    nas, tape, remote = lab.three_copies({"f": b"abcdef", "g": b"other"})
    assert lab.audit_json()[0] == 0
    # The data changed on purpose: the primary now holds 12 bytes, the remote copy
    # was re-synced, the tape copy was not (only touched, so it is read again).
    (nas / "f").write_bytes(b"abcdefghijkl")
    (remote / "f").write_bytes(b"abcdefghijkl")
    os.utime(tape / "f", ns=(0, (tape / "f").stat().st_mtime_ns + 10**9))
    compare = copyaudit.compare  # what audit.py calls by that name

    def compare_then_accept(ctx: Any, *args: Any, **kwargs: Any) -> None:
        compare(ctx, *args, **kwargs)
        if ctx.copy.location == "tape":
            inventory = load_inventory(str(lab.inventory))
            with Catalog(str(lab.state)) as other:
                auditor = Auditor(inventory, resolve_policies(inventory, None, ["ds"]), other,
                                  AuditOptions())
                assert auditor.accept(inventory.datasets["ds"])[0].state.value == "intact"

    monkeypatch.setattr(audit_module, "compare", compare_then_accept)
    lab.audit_json("--verify", "changed")
    monkeypatch.setattr(audit_module, "compare", compare)
    code, report = lab.audit_json("--verify", "changed")
    copy = copy_by_location(report, "ds", "tape")
    # Not intact and not counted: it holds the earlier reference's f (outdated).
    assert (code, copy["state"], copy["counted"]) == (1, "outdated", False)
    [problem] = copy["problems"]
    assert (problem["path"], problem["problem"]) == ("f", "outdated")


def test_accept_keeps_what_copies_verified_of_unchanged_files(lab: Lab) -> None:
    """Reference versions are per file: accepting one changed file leaves the
    cached verification of the others valid, and keeps the replaced entry."""
    nas, tape, remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    for root in (nas, tape, remote):
        (root / "README").write_bytes(b"run 1, re-demultiplexed\n")
    assert lab.audit_json("--verify", "changed")[0] == 1  # not accepted yet
    accepted = run_subprocess("accept", str(lab.inventory), "ds", "--state", str(lab.state))
    assert accepted.returncode == 0, accepted.stderr
    code, report = lab.audit_json("--verify", "changed")
    assert code == 0
    copy = copy_by_location(report, "ds", "tape")
    assert (copy["verified_files"], copy["cached_files"]) == (1, len(FILES) - 1)
    import sqlite3
    with sqlite3.connect(lab.state) as db:
        history = db.execute("SELECT path, version, size FROM reference_history").fetchall()
        versions = db.execute("SELECT version, source FROM reference_versions "
                              "ORDER BY version").fetchall()
    assert history == [(b"README", 1, len(b"run 1\n"))]
    assert versions == [(1, "primary"), (2, "accepted")]


# -- route 4: the lock is on the catalog file, however it is named ---------------------

@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["symlink", "hard link", "relative path"])
def test_lock_holds_for_every_name_of_the_catalog(lab: Lab, spelling: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    state = lab.state
    if spelling == "symlink":
        other = str(lab.tmp / "catalog-link.sqlite3")
        os.symlink(state, other)
    elif spelling == "hard link":
        other = str(lab.tmp / "catalog-hardlink.sqlite3")
        os.link(state, other)
    else:
        monkeypatch.chdir(state.parent.parent)
        other = os.path.join(state.parent.name, state.name)
    with exclusive_lock(other, 0):
        for command in (("accept", str(lab.inventory), "ds"), ("audit", str(lab.inventory))):
            proc = run_subprocess(*command, "--state", str(state), "--lock-timeout", "0")
            assert proc.returncode == 5, (command, proc.stdout, proc.stderr)
            assert "is in use by another threetwoone run" in proc.stderr
    proc = run_subprocess("accept", str(lab.inventory), "ds", "--state", other,
                          "--lock-timeout", "0")
    assert proc.returncode == 0, proc.stderr


# -- route 7: hard-linked trees are one stored copy -----------------------------------------

def test_hard_linked_tree_is_not_an_independent_copy(lab: Lab) -> None:
    nas, tape, _remote = lab.three_copies(FILES)
    shutil.rmtree(tape)
    subprocess.run(["cp", "-al", str(nas), str(tape)], check=True)  # rsnapshot-style
    code, report = lab.audit_json()
    ds = dataset_of(report, "ds")
    copy = copy_by_location(report, "ds", "tape")
    assert code == 1 and ds["status"] == "fail"
    assert copy["state"] == "intact" and not copy["counted"]
    assert ds["counts"]["copies"] == 2
    assert (f"copy tape:ds is the same storage as nas:ds: every file ({len(FILES)}) is a "
            "hard link") in "\n".join(ds["warnings"])


def test_partly_hard_linked_copy_does_not_count(lab: Lab) -> None:
    nas, _tape, remote = lab.three_copies(FILES)
    (remote / "README").unlink()
    os.link(nas / "README", remote / "README")
    code, report = lab.audit_json()
    ds = dataset_of(report, "ds")
    assert code == 1 and ds["counts"]["copies"] == 2 and ds["counts"]["offsite"] == 0
    assert not copy_by_location(report, "ds", "remote")["counted"]
    assert copy_by_location(report, "ds", "tape")["counted"]
    assert (f"copy remote:ds shares 1 of its {len(FILES)} files with nas:ds as hard links"
            in "\n".join(ds["warnings"]))


# -- route 8: a short read is unreadable, never bit rot ----------------------------------

def test_file_truncated_after_listing_is_unreadable_not_corrupt(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    victim = tape / "lane1" / "f1.fq"
    list_copy: Callable[..., None] = copyaudit.list_copy

    def list_then_truncate(ctx: Any, *args: Any) -> None:
        list_copy(ctx, *args)
        if ctx.copy.location == "tape":
            stat = victim.stat()
            os.truncate(victim, 100)  # a concurrent rsync, between listing and reading
            os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    monkeypatch.setattr(audit_module, "list_copy", list_then_truncate)
    code, report = lab.audit_json("--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"], copy["files"]["corrupt"]) == (3, "error", 0)
    [problem] = copy["problems"]
    assert problem["problem"] == "unreadable" and "bit rot" not in problem["detail"]
    assert "100 bytes" in problem["detail"] and "12000" in problem["detail"]


def test_bit_rot_is_still_called_bit_rot(lab: Lab) -> None:
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    victim = tape / "lane1" / "f1.fq"
    stat = victim.stat()
    with open(victim, "r+b") as handle:
        handle.seek(7)
        handle.write(b"X")
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, report = lab.audit_json("--verify", "full")
    [problem] = copy_by_location(report, "ds", "tape")["problems"]
    assert code == 1 and problem["problem"] == "corrupt" and "bit rot" in problem["detail"]


# -- route 9: a file where the copy's folder should be ------------------------------------

def test_copy_path_that_is_a_file_is_missing(lab: Lab) -> None:
    _nas, tape, _remote = lab.three_copies(FILES)
    shutil.rmtree(tape)
    tape.write_bytes(b"not a folder")
    code, report = lab.audit_json()
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (1, "missing")
    assert copy["detail"] == f"{tape} is a file, not a folder"


# -- route 12: a contradictory producer manifest --------------------------------------------

def test_contradictory_manifest_fails_the_dataset(lab: Lab) -> None:
    nas, _tape, _remote = lab.three_copies(FILES, checksums={"file": "checksums.md5",
                                                             "algorithm": "md5"})
    lines = ["0" * 32 + "  lane1/f1.fq"]
    lines += [f"{hashlib.md5(data).hexdigest()}  {os.fsdecode(name)}"
              for name, data in FILES.items()]
    manifest = ("\n".join(lines) + "\n").encode()
    for root in lab.tmp.glob("storage/*/ds"):
        (root / "checksums.md5").write_bytes(manifest)
    # The peer tool's verdict: md5sum -c fails such a manifest.
    oracle = subprocess.run(["md5sum", "--quiet", "-c", "checksums.md5"], cwd=nas,
                            capture_output=True)
    assert oracle.returncode == 1
    code, report = lab.audit_json()
    ds = dataset_of(report, "ds")
    assert (code, ds["status"]) == (1, "fail")
    [violation] = [v for v in ds["violations"] if v["rule"] == "reference"]
    assert "two different checksums: lane1/f1.fq" in violation["message"]


def test_duplicate_manifest_lines_that_agree_are_fine(lab: Lab) -> None:
    lab.three_copies(FILES, checksums={"file": "checksums.md5", "algorithm": "md5"})
    lines = [f"{hashlib.md5(data).hexdigest()}  {os.fsdecode(name)}"
             for name, data in FILES.items()]
    manifest = ("\n".join(lines + lines[:1]) + "\n").encode()
    for root in lab.tmp.glob("storage/*/ds"):
        write_tree(root, {"checksums.md5": manifest})
    assert lab.audit_json()[0] == 0


# -- catalogs from before reference versions -----------------------------------------------

def test_rows_of_an_upgraded_catalog_are_checked_again(lab: Lab) -> None:
    """A catalog written before schema 2 upgrades in place; its "verified ok" rows
    do not say which reference version or storage they were made on, so they
    vouch for nothing: a copy rotten behind unchanged metadata is found by the
    first (even a `changed`) run after the upgrade."""
    import sqlite3

    from threetwoone.catalog import MIGRATIONS, SCHEMA_VERSION
    from threetwoone.checksums import hash_bytes

    _nas, tape, _remote = lab.three_copies(FILES)
    lab.state.parent.mkdir(parents=True)
    with sqlite3.connect(lab.state) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                   "applied_at TEXT NOT NULL)")
        db.execute("INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00Z')")
        db.execute("INSERT INTO datasets VALUES ('ds', 'primary', '2026-01-01T00:00:00Z', "
                   "'someone')")
        for name, data in FILES.items():
            digest = hash_bytes(data, ["xxh3_128"])["xxh3_128"]
            db.execute("INSERT INTO reference_files VALUES ('ds', ?, ?, ?)",
                       (os.fsencode(name), len(data), json.dumps({"xxh3_128": digest})))
            for location in ("nas", "tape", "remote"):
                stat = (lab.tmp / "storage" / location / "ds" / os.fsdecode(name)).stat()
                db.execute("INSERT INTO copy_files VALUES (?, ?, ?, ?, ?, ?, 'ok')",
                           (f"ds/{location}/ds", os.fsencode(name), stat.st_size,
                            stat.st_mtime_ns, f"{stat.st_dev}:{stat.st_ino}", 1.7e9))
        for location in ("nas", "tape", "remote"):
            db.execute("INSERT INTO copies VALUES (?, 'ds', 1.7e9, 'intact')",
                       (f"ds/{location}/ds",))
    victim = tape / "lane2" / "f3.fq"
    stat = victim.stat()
    with open(victim, "r+b") as handle:  # in place: same inode, size and mtime
        handle.write(b"X")
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, report = lab.audit_json("--verify", "changed")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (1, "corrupt")
    assert copy["verified_files"] == len(FILES)
    with sqlite3.connect(lab.state) as db:
        assert db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == \
            SCHEMA_VERSION
    # Checked now, against reference version 1: trusted from here on.
    code, report = lab.audit_json("--verify", "changed")
    assert copy_by_location(report, "ds", "nas")["cached_files"] == len(FILES)
