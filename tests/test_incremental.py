"""The state catalog and nightly incremental audits (verify modes, fixity schedule)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
from typing import Any

import pytest

from conftest import Lab, copy_by_location, dataset_of, run_cli, run_subprocess, write_tree
from threetwoone.schedule import parse_duration, parse_size

DAY = 86400.0
T0 = 1_800_000_000.0  # a fixed "now" for simulated nights


def files(n: int, size: int = 3000) -> dict[str | bytes, bytes]:
    rng = random.Random(n)
    return {f"lane{i % 4}/f{i:03d}.fq": rng.randbytes(size + i) for i in range(n)}


def at(monkeypatch: pytest.MonkeyPatch, when: float) -> None:
    monkeypatch.setenv("THREETWOONE_NOW", str(when))


def verified_at(lab: Lab, location: str) -> dict[str, float]:
    with sqlite3.connect(lab.state) as db:
        return {os.fsdecode(bytes(path)): when for path, when in db.execute(
            "SELECT path, verified_at FROM copy_files WHERE copy LIKE ?", (f"%/{location}/%",))}


def test_verify_modes_choose_files(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    _, tape, _ = lab.three_copies(files(40))
    at(monkeypatch, T0)
    code, report = lab.audit_json("--verify", "full")
    assert code == 0
    assert copy_by_location(report, "ds", "tape")["verified_files"] == 40

    # Tomorrow one file on tape is rewritten with the same content (mtime moves).
    at(monkeypatch, T0 + DAY)
    target = tape / "lane1" / "f005.fq"
    os.utime(target, ns=(0, target.stat().st_mtime_ns + 10**9))
    code, report = lab.audit_json("--verify", "changed")
    copy = copy_by_location(report, "ds", "tape")
    assert (copy["verified_files"], copy["cached_files"]) == (1, 39)
    assert copy["verification"] == "cached" and copy["state"] == "intact"
    assert copy_by_location(report, "ds", "nas")["verified_files"] == 0

    code, report = lab.audit_json("--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert (copy["verified_files"], copy["cached_files"], copy["verification"]) == \
        (40, 0, "full")

    # A changed file whose new content is wrong is found by --verify changed.
    target.write_bytes(b"truncated by a failed rsync")
    code, report = lab.audit_json("--verify", "changed")
    assert code == 1
    assert copy_by_location(report, "ds", "tape")["state"] == "corrupt"


def test_schedule_covers_every_file_within_the_interval(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies(files(60))
    interval = 10
    nightly: list[int] = []
    last_verified: dict[str, float] = {}
    longest_gap: dict[str, float] = {}
    for night in range(3 * interval):
        now = T0 + night * DAY
        at(monkeypatch, now)
        code, report = lab.audit_json("--fixity-interval", f"{interval}d")
        assert code == 0
        nightly.append(copy_by_location(report, "ds", "remote")["verified_files"])
        for path, when in verified_at(lab, "remote").items():
            if when == now:
                if path in last_verified:
                    gap = now - last_verified[path]
                    longest_gap[path] = max(longest_gap.get(path, 0.0), gap)
                last_verified[path] = now
    assert nightly[0] == 60  # the first night reads everything
    # Spread: later nights read a share, not everything, and never nothing.
    assert all(0 < n < 60 for n in nightly[1:]), nightly
    assert sum(nightly[1:]) / (len(nightly) - 1) <= 60 / interval + 3
    # Coverage: every file re-read, and never more than the interval apart.
    assert set(longest_gap) == set(last_verified) and len(last_verified) == 60
    assert max(longest_gap.values()) <= interval * DAY


def test_max_read_caps_scheduled_rereads_but_not_changes(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    nas, _, _ = lab.three_copies(files(30, size=10_000))
    at(monkeypatch, T0)
    lab.audit_json()
    at(monkeypatch, T0 + 40 * DAY)  # everything is overdue
    (nas / "lane0" / "f000.fq").write_bytes(b"new content")
    _code, report = lab.audit_json("--max-read", "25KiB")
    copy = copy_by_location(report, "ds", "remote")
    assert copy["verified_files"] == 2  # 2 x ~10 KB fit in 25 KiB
    primary = copy_by_location(report, "ds", "nas")
    assert primary["state"] == "corrupt"  # the changed file was read despite the cap


def test_bit_rot_detected(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    _, tape, _ = lab.three_copies(files(10))
    at(monkeypatch, T0)
    lab.audit_json()
    target = tape / "lane2" / "f006.fq"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[17] ^= 0x10
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    at(monkeypatch, T0 + DAY)
    code, report = lab.audit_json("--verify", "changed")
    assert code == 0  # metadata unchanged: trusted, as documented
    code, report = lab.audit_json("--verify", "full")
    assert code == 1
    problem = copy_by_location(report, "ds", "tape")["problems"][0]
    assert problem["path"] == "lane2/f006.fq" and problem["problem"] == "corrupt"
    assert "changed without a modification" in problem["detail"]


def test_accept_and_history_round_trip(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    nas, tape, remote = lab.three_copies(files(5))
    assert lab.audit_json()[0] == 0
    # An intentional change on the primary: it now differs from the reference.
    (nas / "lane0" / "f000.fq").write_bytes(b"reprocessed")
    code, report = lab.audit_json()
    assert code == 1 and copy_by_location(report, "ds", "nas")["state"] == "corrupt"
    # Majority view: the two other copies agree with each other, not with the primary.
    ds = dataset_of(report, "ds")
    assert copy_by_location(report, "ds", "nas")["state"] == "corrupt"
    accepted = run_cli("accept", str(lab.inventory), "ds", "--state", str(lab.state))
    assert accepted.exit_code == 0, accepted.stderr
    assert "new reference accepted from nas:ds (5 files" in accepted.stdout
    code, report = lab.audit_json()
    assert code == 1
    assert copy_by_location(report, "ds", "nas")["state"] == "intact"
    # Not yet re-synced: they hold the earlier reference, so outdated, not corrupt.
    assert copy_by_location(report, "ds", "tape")["state"] == "outdated"
    ds = dataset_of(report, "ds")
    assert ds["reference"] == "accepted"
    assert "corrupt" not in [v["rule"] for v in ds["violations"]]
    # Copies follow; all pass again.
    for copy in (tape, remote):
        (copy / "lane0" / "f000.fq").write_bytes(b"reprocessed")
    assert lab.audit_json()[0] == 0
    hist = run_cli("history", "ds", "--state", str(lab.state))
    assert hist.exit_code == 0
    lines = hist.stdout.splitlines()
    statuses = [line.split()[3] for line in lines[2:] if line.strip() and " ds " in line]
    assert statuses == ["PASS", "FAIL", "FAIL", "PASS"]
    assert "reference: accepted" in hist.stdout


def test_accept_with_a_manifest_records_the_files_it_does_not_name(lab: Lab) -> None:
    nas, _tape, _remote = lab.three_copies(
        {"a": b"x", "m.md5": b"9dd4e461268c8034f5c8564e155c67a6  a\n"},
        checksums={"file": "m.md5", "algorithm": "md5"})
    assert lab.audit_json()[0] == 0
    (nas / "README").write_bytes(b"added later\n")
    code, report = lab.audit_json()
    assert code == 0 and "copy nas:ds has 1 file not in the reference" in \
        report["datasets"][0]["warnings"]
    result = run_cli("accept", str(lab.inventory), "ds", "--state", str(lab.state))
    assert result.exit_code == 0
    assert result.stdout == ("ds: 2 files no producer manifest names recorded anew from "
                             "nas:ds; the primary copy is intact against the manifests\n")
    code, report = lab.audit_json()
    assert code == 1  # the backups lack README now
    assert {c["location"]: c["state"] for c in report["datasets"][0]["copies"]} == {
        "nas": "intact", "tape": "incomplete", "remote": "incomplete"}


def test_accept_names_its_argument_for_an_unknown_dataset(lab: Lab) -> None:
    lab.three_copies(files(2))
    lab.write()
    result = run_cli("accept", str(lab.inventory), "sd", "--state", str(lab.state))
    assert result.exit_code == 2
    assert "Invalid value for 'DATASET': unknown dataset: sd (the inventory has: ds)" \
        in result.stderr
    assert "--dataset" not in result.stderr


def test_status_shows_what_is_due(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies(files(8))
    at(monkeypatch, T0)
    lab.audit_json()
    at(monkeypatch, T0 + 31 * DAY)
    result = run_cli("status", "--state", str(lab.state))
    assert result.exit_code == 1  # files overdue
    row = next(line for line in result.stdout.splitlines() if "ds/tape/ds" in line)
    assert "intact" in row and "(31d ago)" in row
    assert row.split()[-2:] == ["8", "0"]  # 8 overdue, none merely coming due


def test_catalog_is_private_and_versioned(lab: Lab) -> None:
    lab.three_copies(files(2))
    lab.audit_json()
    assert stat.S_IMODE(lab.state.stat().st_mode) == 0o600
    with sqlite3.connect(lab.state) as db:
        assert db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] >= 1
        db.execute("INSERT INTO schema_migrations VALUES (999, 'future')")
    result = lab.audit()
    assert result.exit_code == 5
    assert "schema version 999, written by a newer threetwoone" in result.stderr


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_catalog_exit_5(lab: Lab, damage: str) -> None:
    lab.three_copies(files(20))
    lab.audit_json()
    with sqlite3.connect(lab.state) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = lab.state.read_bytes()
    if damage == "garbage":
        lab.state.write_bytes(b"this is not a database" * 100)
    else:
        lab.state.write_bytes(data[: len(data) // 3])
    for wal in lab.state.parent.glob("*-wal"):
        wal.unlink()
    lab.write()
    proc = run_subprocess("audit", str(lab.inventory), "--state", str(lab.state))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "state catalog" in proc.stderr
    assert proc.stdout == ""  # never a verdict from a broken catalog


def test_second_audit_waits_or_exits_5(lab: Lab) -> None:
    from threetwoone.catalog import exclusive_lock
    lab.three_copies(files(5))
    lab.write()
    with exclusive_lock(str(lab.state), 0):
        proc = run_subprocess("audit", str(lab.inventory), "--state", str(lab.state),
                              "--lock-timeout", "0")
        assert proc.returncode == 5
        assert "is in use by another threetwoone run" in proc.stderr
        waiting = subprocess.Popen(
            [sys.executable, "-m", "threetwoone", "audit", str(lab.inventory), "--state",
             str(lab.state), "--lock-timeout", "60", "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Released: the waiting audit completes normally.
    _out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err


def test_two_concurrent_audits_both_complete(lab: Lab) -> None:
    lab.three_copies(files(200))
    lab.write()
    cmd = [sys.executable, "-m", "threetwoone", "audit", str(lab.inventory), "--state",
           str(lab.state), "--format", "json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with sqlite3.connect(lab.state) as db:
        runs = db.execute("SELECT status, exit_code FROM runs").fetchall()
    assert runs == [("pass", 0), ("pass", 0)]


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_a_usable_catalog(lab: Lab) -> None:
    """Kill a real audit at random moments; each next audit must complete with
    the right verdict.  The kill moment is random (a random delay picks it); no
    assertion depends on timing."""
    _, tape, _ = lab.three_copies(files(300, size=20_000))
    data = bytearray((tape / "lane3" / "f007.fq").read_bytes())
    lab.write()
    cmd = [sys.executable, "-m", "threetwoone", "audit", str(lab.inventory), "--state",
           str(lab.state), "--format", "json", "--verify", "full"]
    rng = random.Random(321)
    corrupted = False
    for trial in range(12):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.05, 1.2))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if trial == 5 and not corrupted:
            data[0] ^= 1
            (tape / "lane3" / "f007.fq").write_bytes(bytes(data))
            corrupted = True
        result = run_subprocess("audit", str(lab.inventory), "--state", str(lab.state),
                                "--format", "json")
        report = CliJSON.parse(result)
        tape_copy = copy_by_location(report, "ds", "tape")
        if corrupted:
            # Either the first audit recorded the reference before the damage, or the
            # reference came from the intact primary: tape is corrupt either way.
            assert result.returncode == 1, result.stderr
            assert tape_copy["state"] == "corrupt"
            assert [p["path"] for p in tape_copy["problems"]] == ["lane3/f007.fq"]
        else:
            assert result.returncode == 0, result.stderr
        assert copy_by_location(report, "ds", "nas")["state"] == "intact"


class CliJSON:
    @staticmethod
    def parse(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
        import json

        from conftest import validate_report
        assert "Traceback" not in proc.stderr, proc.stderr
        report: dict[str, Any] = json.loads(proc.stdout)
        validate_report(report)
        return report


def test_parse_duration_and_size() -> None:
    assert parse_duration("30d") == 30 * DAY
    assert parse_duration("4h") == 4 * 3600
    assert parse_size("500GiB") == 500 * 1024**3
    assert parse_size("2TB") == 2 * 1000**4
    assert parse_size("1024") == 1024
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_bad_interval_is_a_usage_error(lab: Lab) -> None:
    lab.three_copies(files(1))
    result = lab.audit("--fixity-interval", "soon")
    assert result.exit_code == 2 and "not a duration" in result.stderr


def test_primary_unreachable_on_later_audit_uses_catalog_reference(lab: Lab) -> None:
    lab.three_copies(files(4))
    assert lab.audit_json()[0] == 0
    import shutil
    shutil.rmtree(lab.tmp / "storage" / "nas")
    code, report = lab.audit_json()
    assert code == 3
    assert copy_by_location(report, "ds", "tape")["state"] == "intact"
    assert copy_by_location(report, "ds", "nas")["state"] == "unreachable"
    write_tree(lab.tmp / "storage" / "nas" / "ds", files(4))


def test_warns_when_the_fixity_interval_outruns_max_age(lab: Lab) -> None:
    lab.three_copies(files(3), policy="fixity-90d")
    code, report = lab.audit_json("--fixity-interval", "120d")
    assert code == 0
    assert any("--fixity-interval (120 days) is longer than policy fixity-90d's max_age 90d"
               in w for w in dataset_of(report, "ds")["warnings"])
    code, report = lab.audit_json("--fixity-interval", "30d")
    assert not any("--fixity-interval" in w for w in dataset_of(report, "ds")["warnings"])
