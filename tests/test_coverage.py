"""Coverage through the CLI: folders that lie in no dataset's copy are found,
counted, dated, and fail the run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from conftest import Lab, run_cli, write_tree
from facilitylab import FILES, NGI, audit_json, write
from facilitylab import facility as ngi_facility


def facility(lab: Lab, projects: tuple[str, ...] = ("P12345", "P12346")) -> Path:
    return ngi_facility(lab, projects)["nas"]


def test_never_declared_run_folder_is_found_counted_and_dated(lab: Lab) -> None:
    nas = facility(lab)
    # A project nobody added: not matched by the collection's glob, not declared.
    write_tree(nas / "ngi" / "Q12348", {"r1.fastq.gz": b"x" * 1000, "r2.fastq.gz": b"y" * 24})
    write(lab, collections={"ngi": NGI},
          coverage=[{"location": "nas", "path": "ngi", "depth": 1}])
    code, report = audit_json(lab)
    assert code == 1
    assert all(d["status"] == "pass" for d in report["datasets"])
    [uncovered] = report["uncovered"]
    assert uncovered["location"] == "nas" and uncovered["path"] == "ngi/Q12348"
    assert (uncovered["files"], uncovered["bytes"]) == (2, 1024)
    first_seen = uncovered["since"]
    assert first_seen is not None
    assert report["coverage"] == [{"location": "nas", "path": "ngi", "depth": 1,
                                   "state": "checked", "detail": None, "uncovered": 1}]
    assert report["status"] == "fail"
    table = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "-q")
    assert table.exit_code == 1
    assert ("uncovered nas:ngi/Q12348: 2 files, 1.0 KiB in no dataset's copy, since "
            f"{first_seen}") in table.stdout
    # Declared at last: covered, and forgotten as uncovered.
    write(lab, collections={"ngi": {**NGI, "glob": "ngi/*"}},
          coverage=[{"location": "nas", "path": "ngi", "depth": 1}])
    for root in ("usb/ngi", "kth/projects/ngi"):
        write_tree(lab.tmp / "storage" / root / "Q12348",
                   {"r1.fastq.gz": b"x" * 1000, "r2.fastq.gz": b"y" * 24})
    code, report = audit_json(lab)
    assert code == 0 and report["uncovered"] == []
    with_state = run_cli("audit", str(lab.inventory), "--state", str(lab.state))
    assert "uncovered" not in with_state.stdout


def test_ignore_globs_and_empty_folders(lab: Lab) -> None:
    nas = facility(lab)
    write_tree(nas / "ngi" / "scratch-tmp", {"junk": b"j"})
    (nas / "ngi" / "empty").mkdir()
    write(lab, collections={"ngi": NGI},
          coverage=[{"location": "nas", "path": "ngi", "ignore": ["scratch*"]}])
    code, report = audit_json(lab)
    assert code == 0, report["uncovered"]
    assert report["uncovered"] == []


def test_a_folder_holding_copies_counts_only_what_lies_outside_them(lab: Lab) -> None:
    nas = lab.location("nas", "disk", "a")
    backup = lab.location("backup", "tape", "b")
    for run in ("R7", "R8"):
        write_tree(nas / "runs" / run / "raw", FILES)
        write_tree(backup / "runs" / run / "raw", FILES)
    write_tree(nas / "runs" / "R7" / "processed", {"p1": b"1" * 10, "deep/p2": b"2" * 5})
    (nas / "runs" / "R7" / "notes.txt").write_bytes(b"abc")
    write(lab, collections={"seq": {"location": "nas", "glob": "runs/*/raw",
                                    "policy": "ndsa-storage-1",
                                    "copies": [{"location": "backup", "path": "{path}"}]}},
          coverage=[{"location": "nas", "path": "runs"}])
    code, report = audit_json(lab)
    assert code == 1 and {d["status"] for d in report["datasets"]} == {"pass"}
    # runs/R8 holds only its dataset's copy; runs/R7 holds files outside it too.
    assert [u["path"] for u in report["uncovered"]] == ["runs/R7"]
    assert (report["uncovered"][0]["files"], report["uncovered"][0]["bytes"]) == (3, 18)


def test_declared_datasets_cover_and_so_does_another_name_for_the_same_storage(
        lab: Lab) -> None:
    nas = facility(lab, ())
    write_tree(nas / "ngi" / "P1", FILES)
    write_tree(nas / "ngi" / "P2", FILES)
    write_tree(lab.tmp / "storage" / "kth" / "P1", FILES)
    write_tree(lab.tmp / "storage" / "kth" / "P2", FILES)
    # The same disk, mounted at its ngi folder: a copy there covers nas:ngi/P2.
    lab.locations["nas-ngi"] = {**lab.locations["nas"], "root": str(nas / "ngi")}
    lab.dataset("P1", [{"location": "nas", "path": "ngi/P1"},
                       {"location": "kth", "path": "P1"}])
    lab.dataset("P2", [{"location": "nas-ngi", "path": "P2"},
                       {"location": "kth", "path": "P2"}])
    write(lab, datasets=lab.datasets, policy="ndsa-storage-1",
          coverage=[{"location": "nas", "path": "ngi"}])
    code, report = audit_json(lab)
    assert report["uncovered"] == []
    assert code == 0


def test_deeper_coverage_and_uncovered_again_is_dated_anew(lab: Lab, monkeypatch: Any
                                                           ) -> None:
    nas = facility(lab)
    for root in ("nas/ngi", "usb/ngi", "kth/projects/ngi"):
        write_tree(lab.tmp / "storage" / root / "P12345" / "extra", {"x": b"1"})
    write(lab, collections={"ngi": NGI}, coverage=[{"location": "nas", "path": "", "depth": 3}])
    # ngi/P12345/extra is inside the dataset ngi/P12345: covered.
    code, report = audit_json(lab)
    assert code == 0 and report["uncovered"] == []
    write_tree(nas / "other" / "a" / "b", {"x": b"1"})
    night = 1_790_000_000
    for offset in (0, 86400):
        monkeypatch.setenv("THREETWOONE_NOW", str(night + offset))
        code, report = audit_json(lab)
        assert code == 1 and [u["path"] for u in report["uncovered"]] == ["other/a/b"]
        # Dated by the first night it was seen, not by tonight.
        assert report["uncovered"][0]["since"] == "2026-09-21T14:13:20Z"
    (nas / "other" / "a" / "b" / "x").unlink()
    monkeypatch.setenv("THREETWOONE_NOW", str(night + 2 * 86400))
    assert audit_json(lab)[0] == 0
    (nas / "other" / "a" / "b" / "y").write_bytes(b"back")
    monkeypatch.setenv("THREETWOONE_NOW", str(night + 3 * 86400))
    code, report = audit_json(lab)
    assert code == 1 and report["uncovered"][0]["since"] == "2026-09-24T14:13:20Z"


def test_coverage_that_cannot_be_checked_is_undetermined(lab: Lab) -> None:
    facility(lab)
    write(lab, collections={"ngi": NGI}, coverage=[{"location": "nas", "path": "nope"}])
    code, report = audit_json(lab)
    assert code == 3
    assert report["coverage"][0]["state"] == "incomplete"
    assert "nope does not exist" in report["coverage"][0]["detail"]
    write(lab, collections={"ngi": NGI}, coverage=[{"location": "usb", "path": "ngi"}])
    os.rename(lab.tmp / "storage" / "usb", lab.tmp / "storage" / "usb-away")
    code, report = audit_json(lab)
    assert code == 3
    assert report["coverage"][0]["state"] == "unreachable"
    table = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "-q")
    assert "coverage usb:ngi: UNREACHABLE" in table.stdout


def test_dataset_selection_skips_coverage(lab: Lab) -> None:
    nas = facility(lab)
    write_tree(nas / "ngi" / "Q1", {"x": b"1"})
    write(lab, collections={"ngi": NGI}, coverage=[{"location": "nas", "path": "ngi"}])
    code, report = audit_json(lab, "-d", "ngi/*")
    assert code == 0 and report["coverage"] == [] and report["uncovered"] == []
    assert audit_json(lab)[0] == 1


def test_invalid_coverage_exit_4(lab: Lab) -> None:
    facility(lab)
    write(lab, collections={"ngi": NGI},
          coverage=[{"location": "nope", "path": "ngi"},
                    {"location": "nas", "path": "../up", "depth": 0},
                    {"location": "nas", "path": "ngi", "depth": 1, "ignore": ["/abs"]}])
    result = run_cli("validate", str(lab.inventory))
    assert result.exit_code == 4
    assert "coverage[0].location: unknown location 'nope'" in result.stderr
    assert "coverage[1].path: must not contain '..'" in result.stderr
    assert "coverage[1].depth: must be a whole number from 1 to 16" in result.stderr
    assert "coverage[2].ignore: '/abs'" in result.stderr


def test_loose_files_above_the_coverage_depth_are_uncovered(lab: Lab) -> None:
    # Runs are runs/<run>/raw; one run was written without the raw/ level.
    roots = ngi_facility(lab, ())
    for root in roots.values():
        write_tree(root / "runs" / "R1" / "raw", {"x.bam": b"1"})
    write_tree(roots["nas"] / "runs" / "R9", {"lost.bam": b"precious"})
    runs = {"location": "nas", "glob": "runs/*/raw",
            "copies": [{"location": "usb", "path": "{path}"},
                       {"location": "kth", "path": "{path}"}]}
    coverage = [{"location": "nas", "path": "runs", "depth": 2}]
    write(lab, collections={"runs": runs}, coverage=coverage)
    code, report = audit_json(lab)
    assert code == 1
    assert [(u["path"], u["files"], u["bytes"]) for u in report["uncovered"]] == [
        ("runs/R9", 1, 8)]
    # Moved to where the collection finds it, and copied: covered.
    (roots["nas"] / "runs" / "R9" / "raw").mkdir()
    (roots["nas"] / "runs" / "R9" / "lost.bam").rename(
        roots["nas"] / "runs" / "R9" / "raw" / "lost.bam")
    for name in ("usb", "kth"):
        write_tree(roots[name] / "runs" / "R9" / "raw", {"lost.bam": b"precious"})
    code, report = audit_json(lab)
    assert code == 0 and report["uncovered"] == []


def test_a_symlinked_folder_is_never_taken_as_covered(lab: Lab) -> None:
    roots = ngi_facility(lab, ("P1",))
    write_tree(lab.tmp / "elsewhere" / "P2", {"lost.bam": b"precious"})
    os.symlink(lab.tmp / "elsewhere" / "P2", roots["nas"] / "ngi" / "P2")
    coverage = {"location": "nas", "path": "ngi"}
    write(lab, collections={"ngi": NGI}, coverage=[coverage])
    code, report = audit_json(lab)
    assert code == 3, report["coverage"]
    [check] = report["coverage"]
    assert check["state"] == "incomplete"
    assert "ngi/P2 is a symlink, not followed" in check["detail"]
    # Ignored on purpose: checked in full again.
    write(lab, collections={"ngi": NGI}, coverage=[{**coverage, "ignore": ["P2"]}])
    code, report = audit_json(lab)
    assert code == 0, report["coverage"]
