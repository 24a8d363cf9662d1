"""``threetwoone merge`` must never pass on shard reports that do not cover
every dataset of one run: a report copied under another shard's name, shards
limited by ``-d`` differently, or a shard killed mid-run that left an earlier
night's report in place."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import Lab, run_cli, validate_report, write_tree
from facilitylab import FILES, NGI, write
from facilitylab import facility as ngi_facility
from threetwoone.catalog import exclusive_lock
from threetwoone.selection import shard_of

PROJECTS = [f"P{10000 + n}" for n in range(12)]


def facility(lab: Lab) -> dict[str, Path]:
    roots = ngi_facility(lab, PROJECTS)
    write(lab, collections={"ngi": NGI}, coverage=[{"location": "nas", "path": "ngi"}])
    return roots


def shard_report(lab: Lab, index: int, count: int, *extra: str) -> Path:
    out = lab.tmp / f"shard-{index}.json"
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state),
                     "--shard", f"{index}/{count}", "--report", f"json:{out}", "-q", *extra)
    assert result.exit_code in (0, 1, 3), result.stderr
    return out


def test_a_report_copied_as_another_shard_is_refused(lab: Lab) -> None:
    roots = facility(lab)
    rotten = next(p for p in PROJECTS if shard_of(f"ngi/{p}", 2) == 1)
    (roots["usb"] / "ngi" / rotten / "a.fastq.gz").write_bytes(b"rot")
    good = shard_report(lab, 0, 2)
    assert shard_report(lab, 1, 2).exists()
    # Shard 1 failed; someone fills the gap with shard 0's report, relabelled.
    fake = lab.tmp / "shard-1-fake.json"
    data = json.loads(good.read_text())
    data["shard"] = "1/2"
    fake.write_text(json.dumps(data))
    result = run_cli("merge", str(good), str(fake))
    assert result.exit_code == 5, result.stdout
    assert "not the report of shard 1/2" in result.stderr and str(fake) in result.stderr
    assert "Traceback" not in result.stderr


def test_shards_limited_differently_by_d_are_refused(lab: Lab) -> None:
    roots = facility(lab)
    write_tree(roots["nas"] / "ngi" / "Q-undeclared", FILES)
    ours = [f"ngi/{p}" for p in PROJECTS if shard_of(f"ngi/{p}", 2) == 0]
    assert len(ours) > 1
    # Shard 0 re-run by hand for one dataset: its other datasets and the
    # coverage check (shard 0's) are left out.
    first = shard_report(lab, 0, 2, "-d", ours[0])
    second = shard_report(lab, 1, 2)
    result = run_cli("merge", str(first), str(second), "--format", "json")
    assert result.exit_code == 5, result.stdout
    assert "shards audited different datasets (-d)" in result.stderr
    assert f"-d {ours[0]}: {first}" in result.stderr
    # Every shard limited alike: the merge is that selection's verdict.
    same = [shard_report(lab, k, 2, "-d", "ngi/*") for k in range(2)]
    result = run_cli("merge", *map(str, same), "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    validate_report(report)
    assert report["selection"] == ["ngi/*"]
    assert len(report["datasets"]) == len(PROJECTS)


def _holds(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.path.realpath(fd) == str(path) for fd in fds.iterdir())
    except FileNotFoundError:  # an fd closed while listing
        return False


def test_a_shard_killed_mid_run_does_not_leave_last_nights_report(lab: Lab) -> None:
    roots = facility(lab)
    reports = [shard_report(lab, k, 2) for k in range(2)]
    assert run_cli("merge", *map(str, reports)).exit_code == 0  # last night: all green
    rotten = next(p for p in PROJECTS if shard_of(f"ngi/{p}", 2) == 1)
    (roots["kth"] / "projects" / "ngi" / rotten / "a.fastq.gz").write_bytes(b"rot")
    # Tonight shard 1 is killed mid-run (its job's time limit): here while it
    # waits for its catalog, which the test holds.
    catalog = lab.tmp / "state" / "catalog.shard-1-of-2.sqlite3"
    with exclusive_lock(str(catalog), 0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "threetwoone", "audit", str(lab.inventory), "--state",
             str(lab.state), "--shard", "1/2", "--report", f"json:{reports[1]}", "-q",
             "--lock-timeout", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not _holds(proc.pid, catalog):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    result = run_cli("merge", *map(str, reports), "--format", "json")
    assert result.exit_code == 5, result.stdout
    report = result.json()
    assert report["status"] == "error"
    assert "the audit of shard 1/2 started at" in report["error"]
    assert "has not finished" in report["error"]


def test_a_shard_judged_by_another_policy_is_refused(lab: Lab) -> None:
    roots = facility(lab)
    lacking = next(p for p in PROJECTS if shard_of(f"ngi/{p}", 2) == 1)
    shutil.rmtree(roots["kth"] / "projects" / "ngi" / lacking)  # the off-site copy is gone
    first = shard_report(lab, 0, 2)
    assert json.loads(shard_report(lab, 1, 2).read_text())["exit_code"] == 1
    # Shard 1 re-run by hand with a policy its datasets pass (two copies suffice).
    second = shard_report(lab, 1, 2, "--policy", "ndsa-storage-1")
    assert json.loads(second.read_text())["exit_code"] == 0
    result = run_cli("merge", str(first), str(second))
    assert result.exit_code == 5, result.stdout
    assert "shards judged by different policies (--policy)" in result.stderr
    assert f"--policy ndsa-storage-1: {second}" in result.stderr
