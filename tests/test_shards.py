"""``audit --shard K/N`` and ``threetwoone merge`` through the CLI: shards
split the datasets by a stable hash, each keeps its own catalog, and the
merged report equals an unsharded audit; merge refuses (exit 5) anything
that would make the combined verdict untrue."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Lab, run_cli, validate_report, write_tree
from facilitylab import FILES, NGI, shard_run, write
from facilitylab import facility as ngi_facility
from threetwoone.selection import shard_of


def facility(lab: Lab, count: int = 12) -> dict[str, Path]:
    """The NGI collection of ``count`` projects, a declared dataset beside it,
    coverage of ngi/."""
    roots = ngi_facility(lab, [f"P{10000 + number}" for number in range(count)])
    write_tree(roots["nas"] / "declared", FILES)
    write_tree(roots["kth"] / "declared", FILES)
    lab.dataset("declared", [{"location": "nas", "path": "declared"},
                             {"location": "kth", "path": "declared"}], policy="ndsa-storage-1")
    write(lab, datasets=lab.datasets, collections={"ngi": NGI},
          coverage=[{"location": "nas", "path": "ngi"}])
    return roots


def merged(*reports: Path, extra: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    result = run_cli("merge", *map(str, reports), "--format", "json", *extra)
    return result.exit_code, (result.json() if result.stdout else {})


def verdicts(report: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [(d["name"], d["status"], [c["state"] for c in d["copies"]])
            for d in report["datasets"]]


def test_shards_split_by_stable_hash_and_merge_equals_unsharded(lab: Lab) -> None:
    roots = facility(lab)
    (roots["usb"] / "ngi" / "P10003" / "a.fastq.gz").write_bytes(b"rot")
    write_tree(roots["nas"] / "ngi" / "Q-undeclared", {"x": b"12345"})
    reports = [shard_run(lab, k, 3) for k in range(3)]
    names = [[d["name"] for d in json.loads(p.read_text())["datasets"]] for p in reports]
    everything = ["declared"] + [f"ngi/P{10000 + n}" for n in range(12)]
    assert sorted(name for shard in names for name in shard) == sorted(everything)
    for index, shard_names in enumerate(names):
        assert all(shard_of(name, 3) == index for name in shard_names)
    # Each shard has a catalog of its own.
    for index in range(3):
        assert (lab.tmp / "state" / f"catalog.shard-{index}-of-3.sqlite3").is_file()
    assert not lab.state.exists()
    code, report = merged(*reports)
    unsharded = run_cli("audit", str(lab.inventory), "--state", str(lab.tmp / "one.sqlite3"),
                        "--format", "json")
    whole = unsharded.json()
    assert code == unsharded.exit_code == 1
    assert verdicts(report) == verdicts(whole)
    assert [d["name"] for d in report["datasets"]] == everything  # the inventory's order
    def where(items: list[dict[str, Any]]) -> list[tuple[str, str, int, int]]:
        return [(u["location"], u["path"], u["files"], u["bytes"]) for u in items]
    assert where(report["uncovered"]) == where(whole["uncovered"]) == [
        ("nas", "ngi/Q-undeclared", 1, 5)]
    assert report["merged_shards"] == 3 and report["shard"] is None
    assert report["totals"] == whole["totals"]


def test_merge_writes_reports_and_table(lab: Lab) -> None:
    facility(lab, 4)
    reports = [shard_run(lab, k, 2) for k in range(2)]
    prom = lab.tmp / "merged.prom"
    out = lab.tmp / "merged.json"
    result = run_cli("merge", *map(str, reports), "-o", str(out), "--format", "json",
                     "--report", f"prometheus:{prom}")
    assert result.exit_code == 0, result.stderr
    validate_report(json.loads(out.read_text()))
    assert "threetwoone_audit_exit_code 0" in prom.read_text()
    table = run_cli("merge", *map(str, reports))
    assert table.exit_code == 0 and "5 datasets: 5 pass, 0 fail, 0 unknown" in table.stdout


def test_missing_duplicated_and_foreign_shards_exit_5_naming_them(lab: Lab) -> None:
    facility(lab, 4)
    reports = [shard_run(lab, k, 3) for k in range(3)]
    result = run_cli("merge", str(reports[0]), str(reports[2]))
    assert result.exit_code == 5
    assert "missing shard(s) 1/3 of 3" in result.stderr
    result = run_cli("merge", *map(str, reports), str(reports[1]))
    assert result.exit_code == 5
    assert f"shard reported twice: 1/3: {reports[1]}, {reports[1]}" in result.stderr
    other_count = shard_run(lab, 0, 2)
    result = run_cli("merge", str(other_count), *map(str, reports[1:]))
    assert result.exit_code == 5
    assert "reports of different shard counts: 2 shards:" in result.stderr
    # Another inventory: a copy of this one elsewhere.
    other = lab.tmp / "other.yaml"
    other.write_text(lab.inventory.read_text())
    foreign = lab.tmp / "foreign.json"
    assert run_cli("audit", str(other), "--state", str(lab.tmp / "o.sqlite3"), "--shard",
                   "1/3", "--report", f"json:{foreign}", "-q").exit_code == 0
    result = run_cli("merge", str(reports[0]), str(foreign), str(reports[2]))
    assert result.exit_code == 5
    assert "reports of different inventories" in result.stderr
    assert str(other) in result.stderr and str(lab.inventory) in result.stderr
    # The same file, edited between the shards' runs.
    lab.inventory.write_text(lab.inventory.read_text() + "# edited\n")
    edited = shard_run(lab, 1, 3)
    result = run_cli("merge", str(reports[0]), str(edited), str(reports[2]))
    assert result.exit_code == 5
    assert "reports of different inventories" in result.stderr and "sha256" in result.stderr
    unsharded = lab.tmp / "whole.json"
    run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--report",
            f"json:{unsharded}", "-q")
    result = run_cli("merge", str(unsharded))
    assert result.exit_code == 5 and "not the report of a sharded audit" in result.stderr
    garbage = lab.tmp / "garbage.json"
    garbage.write_text("{not json")
    result = run_cli("merge", str(garbage))
    assert result.exit_code == 5 and "not a JSON report" in result.stderr
    assert "Traceback" not in result.stderr


def test_merge_failure_still_writes_an_error_report(lab: Lab) -> None:
    facility(lab, 4)
    reports = [shard_run(lab, k, 2) for k in range(2)]
    out = lab.tmp / "merged.json"
    out.write_text(json.dumps({"status": "pass", "exit_code": 0}))  # yesterday's green
    result = run_cli("merge", str(reports[0]), "--report", f"json:{out}")
    assert result.exit_code == 5
    report = json.loads(out.read_text())
    validate_report(report)
    assert report["status"] == "error" and report["exit_code"] == 5
    assert "missing shard(s) 1/2" in report["error"]


def test_a_failed_shard_fails_the_merge(lab: Lab) -> None:
    facility(lab, 4)
    good = shard_run(lab, 0, 2)
    bad = lab.tmp / "shard-1.json"
    # The shard's catalog is unusable: that shard ends with exit 5 and says so.
    catalog = lab.tmp / "state" / "catalog.shard-1-of-2.sqlite3"
    catalog.write_bytes(b"this is not a database" * 100)
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--shard", "1/2",
                     "--report", f"json:{bad}")
    assert result.exit_code == 5
    assert json.loads(bad.read_text())["shard"] == "1/2"
    code, report = merged(good, bad)
    assert code == 5
    assert report["status"] == "error" and "shard 1/2" in report["error"]


def test_shard_spec_out_of_range_is_a_usage_error(lab: Lab) -> None:
    facility(lab, 2)
    for spec in ("3/3", "-1/3", "0/0", "1", "a/b", "1/3/4"):
        result = run_cli("audit", str(lab.inventory), "--state", str(lab.state),
                         "--shard", spec)
        assert result.exit_code == 2, (spec, result.stderr)
        assert "--shard" in result.stderr
    assert not lab.state.parent.exists()


def test_shard_of_is_stable_across_processes() -> None:
    # Python's hash() changes per process; the shard of a name must not.
    names = ["ngi/P12345", "declared", "seq/R7/raw", "ünïcode"]
    here = [shard_of(name, 7) for name in names]
    code = ("from threetwoone.selection import shard_of; "
            f"print([shard_of(n, 7) for n in {names!r}])")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        assert out.stdout.strip() == str(here)
    # And it is SHA-256 based, not an accident of this version.
    assert here == [int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "big") % 7
                    for n in names]


def test_merge_keeps_every_field_of_every_dataset(lab: Lab) -> None:
    roots = facility(lab, 3)
    (roots["kth"] / "projects" / "ngi" / "P10001" / "a.fastq.gz").write_bytes(b"rot")
    os.unlink(roots["usb"] / "ngi" / "P10002" / "sub" / "b.txt")
    write_tree(roots["nas"] / "ngi" / "P10000", {"new\nline.txt": b"extra"})
    only = shard_run(lab, 0, 1)
    original = json.loads(only.read_text())
    code, report = merged(only)
    assert code == original["exit_code"] == 1
    assert report["datasets"] == original["datasets"]
    for key in ("locations", "collections", "coverage", "uncovered", "totals", "bytes_read",
                "inventory", "inventory_sha256", "status"):
        assert report[key] == original[key], key


def test_a_new_shard_count_says_the_old_catalogs_are_not_used(lab: Lab) -> None:
    facility(lab, 3)
    shard_run(lab, 0, 2)
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--shard", "0/3",
                     "-q")
    assert "a catalog of another shard count is there" in result.stderr
    assert "catalog.shard-0-of-2.sqlite3" in result.stderr
    again = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--shard", "0/3",
                    "-q")
    assert "another shard count" not in again.stderr  # said once, when it starts afresh
