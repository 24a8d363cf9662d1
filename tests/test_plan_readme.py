"""The README's worked example of ``threetwoone plan`` is the tool's own output:
an NGI-sized dataset (12 TB) missing its off-site copy, a 100 Mbit/s and a
10 Gbit/s link against a 2-day courier.  The dataset is audited for real (12
small files), then the catalog's sizes are scaled to 1 TB a file: the plan
reads sizes from the catalog only, so its numbers are those of 12 TB."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from conftest import Lab, run_cli, write_tree

README = Path(__file__).resolve().parent.parent / "README.md"
TB = 10**12


def ngi_lab(lab: Lab) -> None:
    nas = lab.location("lab-nas", "disk", "uppsala-bmc")
    tape = lab.location("lab-tape", "tape", "uppsala-bmc")
    lab.location("kth-backup", "disk", "kth-stockholm", create=False)
    lab.locations["swestore"] = {
        "kind": "webdav", "url": "https://webdav.swestore.example.org/snic/p12345",
        "auth": {"type": "bearer", "token_env": "SWESTORE_TOKEN"}, "media": "object",
        "site": "nsc-linkoping"}
    files: dict[str | bytes, bytes] = {f"P12345_{n:03d}.fastq.gz": bytes([n])
                                       for n in range(101, 113)}
    for root in (nas, tape):
        write_tree(root / "P12345", files)
    lab.dataset("ngi-P12345", [{"location": "lab-nas", "path": "P12345", "primary": True},
                               {"location": "lab-tape", "path": "P12345"}])
    lab.top["transfer"] = {
        "links": [{"from": "uppsala-bmc", "to": "kth-stockholm", "bandwidth": "100Mbit/s"},
                  {"from": "uppsala-bmc", "to": "nsc-linkoping", "bandwidth": "10Gbit/s"}],
        "courier": {"days": 2, "disk_size": "20TB"}}


def example_output(lab: Lab) -> str:
    ngi_lab(lab)
    assert lab.audit().exit_code == 1
    with sqlite3.connect(lab.state) as db:
        db.execute("UPDATE reference_files SET size = ?", (TB,))
        db.execute("UPDATE copy_files SET size = ?", (TB,))
    result = run_cli("plan", str(lab.inventory), "--state", str(lab.state))
    assert result.exit_code == 1, result.stderr
    text = result.stdout.replace(str(lab.tmp), "/srv")
    return re.sub(r"audited [0-9T:Z-]+\)", "audited 2026-11-30T02:00:00Z)", text)


def test_the_readme_shows_the_plan_as_the_tool_prints_it(lab: Lab) -> None:
    output = example_output(lab)
    assert "kth-backup: 12 TB: network 11.2 days at 100 Mbit/s, courier 2 days with 1 " \
           "disk: courier" in output
    assert "swestore: 12 TB: network 2.7 h at 10 Gbit/s, courier 2 days with 1 disk: " \
           "network" in output
    block = "\n".join(f"    {line}" if line else "" for line in output.rstrip().split("\n"))
    readme = README.read_text(encoding="utf-8")
    assert block in readme, "README's 'Planning repairs' example differs from:\n" + block
