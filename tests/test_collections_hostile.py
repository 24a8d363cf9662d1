"""Collections meet folder names nobody chose carefully, and the commands that
read an audit later (plan) meet collection datasets."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess

import jsonschema

from conftest import Lab, run_cli
from facilitylab import NGI, write
from facilitylab import facility as ngi_facility
from threetwoone.repair.render import schema

#: A project folder whose name holds a newline (valid UTF-8: a dataset, shown escaped).
ODD = "P\n1"
ODD_NAME = "ngi/P\\n1"  # the dataset's name: shown escaped


def audit(lab: Lab, *extra: str) -> int:
    return run_cli("audit", str(lab.inventory), "--state", str(lab.state), "-q",
                   *extra).exit_code


def test_plan_covers_collection_datasets(lab: Lab) -> None:
    roots = ngi_facility(lab, ["P1", "P2"])
    write(lab, collections={"ngi": NGI})
    assert audit(lab) == 0
    (roots["kth"] / "projects" / "ngi" / "P2" / "a.fastq.gz").write_bytes(b"rot")
    assert audit(lab, "--verify", "full") == 1
    # Was: "0 datasets", exit 0 (nothing to do): plan saw only declared datasets.
    result = run_cli("plan", str(lab.inventory), "--state", str(lab.state))
    assert result.exit_code == 1, result.stdout
    assert "ngi/P1 (pass, audited" in result.stdout
    assert "1. repair kth:projects/ngi/P2 (copy is corrupt)" in result.stdout


def test_plan_of_a_folder_name_with_a_newline(lab: Lab) -> None:
    roots = ngi_facility(lab, ["P2", ODD])
    write(lab, collections={"ngi": NGI})
    assert audit(lab) == 0
    (roots["usb"] / "ngi" / ODD / "a.fastq.gz").write_bytes(b"rot")
    assert audit(lab, "--verify", "full") == 1
    result = run_cli("plan", str(lab.inventory), "--state", str(lab.state), "--format",
                     "json")
    assert result.exit_code == 1, result.stdout
    plan = json.loads(result.stdout)
    jsonschema.validate(plan, schema())
    plans = {p["name"]: p for p in plan["datasets"]}
    assert set(plans) == {"ngi/P2", ODD_NAME}
    [repair] = plans[ODD_NAME]["actions"]
    assert (repair["kind"], repair["copy"], repair["files"]) == ("repair", f"usb:ngi/{ODD}", 1)
    assert plans[ODD_NAME]["files_lost"] == 0
    # The exact command names the real folders (the shown one cannot).
    exact = base64.b64decode(repair["command_base64"])
    assert shlex.quote(os.fsdecode(bytes(roots["usb"] / "ngi" / ODD)) + "/") in os.fsdecode(
        exact)
    assert "command_base64" in run_cli("plan", str(lab.inventory), "--state",
                                       str(lab.state)).stdout
    files = run_cli("plan-files", str(lab.inventory), "--state", str(lab.state), "-d",
                    ODD_NAME, "--to", f"usb:ngi/{ODD}", "--from", f"nas:ngi/{ODD}")
    assert files.exit_code == 0, files.stderr
    assert files.stdout == "a.fastq.gz\0"
    subprocess.run([b"sh", b"-c", exact], check=True)
    assert audit(lab, "--verify", "full") == 0


def test_a_missing_or_symlinked_glob_folder_is_not_matching_nothing(lab: Lab) -> None:
    roots = ngi_facility(lab, ["P1"])
    write(lab, collections={"ngi": NGI})
    # The share is not mounted: its mount point is an empty folder.
    moved = lab.tmp / "share-elsewhere"
    (roots["nas"] / "ngi").rename(moved)
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--format",
                     "json")
    assert result.exit_code == 3, result.stderr  # was 0: "matches no folder", a warning
    [listing] = result.json()["collections"]
    assert listing["state"] == "incomplete"
    assert "ngi: no such folder (the glob starts in it)" in listing["detail"]
    # Replaced by a symlink (never followed): the same.
    os.symlink(moved, roots["nas"] / "ngi")
    assert run_cli("audit", str(lab.inventory), "--state", str(lab.state)).exit_code == 3
    os.unlink(roots["nas"] / "ngi")
    moved.rename(roots["nas"] / "ngi")
    assert run_cli("audit", str(lab.inventory), "--state", str(lab.state)).exit_code == 0


def test_a_report_never_lands_in_a_copy_a_collection_would_find(lab: Lab) -> None:
    roots = ngi_facility(lab, ["P1"])
    # An inventory that ends with exit 4 once listed (two collections claim ngi/P1):
    # the report of that failure is written, but never into a copy.
    write(lab, collections={"ngi": NGI, "again": {**NGI, "glob": "ngi/P1"}})
    for target in (roots["usb"] / "ngi" / "P1" / "report.json",
                   roots["kth"] / "projects" / "ngi" / "P1" / "sub" / "report.json",
                   roots["nas"] / "ngi" / "P1" / "report.json"):
        result = run_cli("audit", str(lab.inventory), "--state", str(lab.state),
                         "--report", f"json:{target}")
        assert result.exit_code == 2, result.stderr
        assert "lies inside a copy collection" in result.stderr
        assert not target.exists()
    # Beside the copies is fine.
    beside = roots["usb"] / "report.json"
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--report",
                     f"json:{beside}")
    assert result.exit_code == 4 and beside.exists()
