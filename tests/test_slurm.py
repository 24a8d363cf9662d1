"""The Slurm example (examples/slurm/) on a real single-node Slurm started by
the test: the job array audits one shard per task, the dependent merge job
combines them, and the merged verdict equals an unsharded audit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, run_cli, validate_report, write_tree
from facilitylab import NGI, write
from facilitylab import facility as ngi_facility
from servers.slurm import SlurmCluster, poll, slurm_cluster

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "slurm"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[SlurmCluster]:
    yield from slurm_cluster()


def facility(lab: Lab, projects: int = 9) -> dict[str, Path]:
    roots = ngi_facility(lab, [f"P{12340 + number}" for number in range(projects)])
    write(lab, collections={"ngi": NGI}, coverage=[{"location": "nas", "path": "ngi"}])
    return roots


def submit(cluster: SlurmCluster, lab: Lab, shards: int) -> tuple[int, str, Path]:
    """examples/slurm/submit.sh --wait: (merge job's exit code, array job id, runs)."""
    runs = lab.tmp / "runs"
    env = {**cluster.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run([str(EXAMPLE / "submit.sh"), "--wait", str(lab.inventory),
                           str(shards), str(runs)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=lab.tmp)
    lines = done.stdout.split()
    assert lines[:2] == ["array", "job"], (done.stdout, done.stderr)
    return done.returncode, lines[2], runs


def verdicts(report: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [(d["name"], d["status"], [c["state"] for c in d["copies"]])
            for d in report["datasets"]]


def test_job_array_and_merge_equal_an_unsharded_audit(cluster: SlurmCluster,
                                                      lab: Lab) -> None:
    roots = facility(lab)
    (roots["kth"] / "projects" / "ngi" / "P12342" / "a.fastq.gz").write_bytes(b"rot")
    write_tree(roots["nas"] / "ngi" / "undeclared-run", {"r.fastq.gz": b"z" * 100})
    code, array, runs = submit(cluster, lab, shards=3)
    # The array ran one task per shard, each with its own catalog.
    poll(lambda: "PENDING" not in cluster.job_state(array)
         and "RUNNING" not in cluster.job_state(array), "the array job to end")
    shards = sorted((runs / array).glob("shard-*.json"))
    assert [p.name for p in shards] == ["shard-0.json", "shard-1.json", "shard-2.json"]
    assert sorted(p.name for p in (runs / "state").iterdir()
                  if p.suffix == ".sqlite3") == [f"catalog.shard-{k}-of-3.sqlite3"
                                                 for k in range(3)]
    merged = json.loads((runs / array / "merged.json").read_text())
    validate_report(merged)
    assert json.loads((runs / "latest.json").read_text()) == merged
    whole = run_cli("audit", str(lab.inventory), "--state", str(lab.tmp / "one.sqlite3"),
                    "--format", "json")
    unsharded = whole.json()
    assert code == whole.exit_code == merged["exit_code"] == 1
    assert verdicts(merged) == verdicts(unsharded)
    assert len(merged["datasets"]) == 9 and merged["merged_shards"] == 3
    assert [(u["path"], u["files"]) for u in merged["uncovered"]] == [
        ("ngi/undeclared-run", 1)]
    assert "threetwoone_audit_exit_code 1" in (runs / "threetwoone.prom").read_text()


def test_a_shard_that_never_reports_fails_the_merge(cluster: SlurmCluster, lab: Lab,
                                                    tmp_path: Path) -> None:
    facility(lab, projects=4)
    # A threetwoone that dies before writing a report on shard 1 (a lost node).
    wrapper = tmp_path / "bin" / "threetwoone"
    wrapper.parent.mkdir()
    real = shutil.which("threetwoone", path=str(Path(sys.executable).parent))
    wrapper.write_text("#!/bin/sh\ncase \"$*\" in *'--shard 1/'*) exit 137;; esac\n"
                       f"exec {real} \"$@\"\n")
    wrapper.chmod(0o755)
    os.environ["THREETWOONE"] = str(wrapper)
    try:
        code, array, runs = submit(cluster, lab, shards=2)
    finally:
        del os.environ["THREETWOONE"]
    assert code == 5
    merged = json.loads((runs / array / "merged.json").read_text())
    assert merged["status"] == "error" and "missing shard(s) 1/2" in merged["error"]
    assert json.loads((runs / "latest.json").read_text())["exit_code"] == 5
