"""``threetwoone merge`` must never pass on shard reports that do not cover
every dataset of one run: a report copied under another shard's name, shards
limited by ``-d`` differently, or a shard killed mid-run that left an earlier
night's report in place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, run_cli, validate_report, write_tree
from facilitylab import FILES, NGI, shard_run, write
from facilitylab import facility as ngi_facility
from threetwoone.audit import Auditor
from threetwoone.selection import shard_of

PROJECTS = [f"P{10000 + n}" for n in range(12)]


def facility(lab: Lab) -> dict[str, Path]:
    roots = ngi_facility(lab, PROJECTS)
    write(lab, collections={"ngi": NGI}, coverage=[{"location": "nas", "path": "ngi"}])
    return roots


def test_a_report_copied_as_another_shard_is_refused(lab: Lab) -> None:
    roots = facility(lab)
    rotten = next(p for p in PROJECTS if shard_of(f"ngi/{p}", 2) == 1)
    (roots["usb"] / "ngi" / rotten / "a.fastq.gz").write_bytes(b"rot")
    good = shard_run(lab, 0, 2)
    assert shard_run(lab, 1, 2).exists()
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
    first = shard_run(lab, 0, 2, "-d", ours[0])
    second = shard_run(lab, 1, 2)
    result = run_cli("merge", str(first), str(second), "--format", "json")
    assert result.exit_code == 5, result.stdout
    assert "shards audited different datasets (-d)" in result.stderr
    assert f"-d {ours[0]}: {first}" in result.stderr
    # Every shard limited alike: the merge is that selection's verdict.
    same = [shard_run(lab, k, 2, "-d", "ngi/*") for k in range(2)]
    result = run_cli("merge", *map(str, same), "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    validate_report(report)
    assert report["selection"] == ["ngi/*"]
    assert len(report["datasets"]) == len(PROJECTS)


def test_a_shard_stopped_mid_run_does_not_leave_last_nights_report(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    roots = facility(lab)
    reports = [shard_run(lab, k, 2) for k in range(2)]
    assert run_cli("merge", *map(str, reports)).exit_code == 0  # last night: all green
    rotten = next(p for p in PROJECTS if shard_of(f"ngi/{p}", 2) == 1)
    (roots["kth"] / "projects" / "ngi" / rotten / "a.fastq.gz").write_bytes(b"rot")
    # Tonight shard 1 is stopped while it audits (^C, scancel, a job's time
    # limit, a node lost): it writes no verdict.
    seen: list[str] = []

    def stopped(self: Auditor, *args: Any, **kwargs: Any) -> Any:
        seen.append(reports[1].read_text())
        raise KeyboardInterrupt

    monkeypatch.setattr(Auditor, "run", stopped)
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--shard", "1/2",
                     "--report", f"json:{reports[1]}", "-q")
    assert result.exit_code == 130 and len(seen) == 1
    assert "has not finished" in seen[0]  # said from before the audit began
    monkeypatch.undo()
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
    first = shard_run(lab, 0, 2)
    assert json.loads(shard_run(lab, 1, 2).read_text())["exit_code"] == 1
    # Shard 1 re-run by hand with a policy its datasets pass (two copies suffice).
    second = shard_run(lab, 1, 2, "--policy", "ndsa-storage-1")
    assert json.loads(second.read_text())["exit_code"] == 0
    result = run_cli("merge", str(first), str(second))
    assert result.exit_code == 5, result.stdout
    assert "shards judged by different policies (--policy)" in result.stderr
    assert f"--policy ndsa-storage-1: {second}" in result.stderr


def test_a_shards_unfinished_mark_never_lands_on_what_the_audit_reads(lab: Lab) -> None:
    roots = facility(lab)
    shard_run(lab, 0, 1)
    catalog = lab.tmp / "state" / "catalog.shard-0-of-1.sqlite3"
    before = catalog.read_bytes()
    inside_copy = roots["usb"] / "ngi" / PROJECTS[0] / "report.json"  # a copy found by glob
    for target in (catalog, inside_copy):
        result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--shard",
                         "0/1", "--report", f"json:{target}")
        assert result.exit_code == 2, result.stderr
        assert "choose another path for the report" in result.stderr
    assert catalog.read_bytes() == before
    assert not inside_copy.exists()
