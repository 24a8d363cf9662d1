"""The NGI facility the collection, coverage, shard and Slurm tests audit: a
NAS with project folders, a USB disk and an off-site host holding copies of
each, and the collection that declares them by pattern."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from conftest import Lab, run_cli, write_tree

FILES = {"a.fastq.gz": b"reads " * 50, "sub/b.txt": b"notes"}

#: Collection ngi: every ngi/P* folder on the NAS, copied to the USB disk and KTH.
NGI = {"location": "nas", "glob": "ngi/P*",
       "copies": [{"location": "usb", "path": "ngi/{name}"},
                  {"location": "kth", "path": "projects/{path}"}]}


def facility(lab: Lab, projects: Iterable[str]) -> dict[str, Path]:
    """The three locations, each project on the NAS and on both backups."""
    roots = {"nas": lab.location("nas", "disk", "uppsala"),
             "usb": lab.location("usb", "removable", "uppsala"),
             "kth": lab.location("kth", "disk", "stockholm")}
    for project in projects:
        for root in (roots["nas"] / "ngi", roots["usb"] / "ngi",
                     roots["kth"] / "projects" / "ngi"):
            write_tree(root / project, FILES)
    return roots


def write(lab: Lab, **top: Any) -> Path:
    """The inventory: the lab's locations plus ``top`` (collections, coverage, ...)."""
    doc = {"version": 1, "locations": lab.locations, **top}
    lab.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    return lab.inventory


def audit_json(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state),
                     "--format", "json", *args)
    assert result.exit_code in (0, 1, 3), result.stderr
    return result.exit_code, result.json()


def shard_run(lab: Lab, index: int, count: int, *extra: str) -> Path:
    """``audit --shard index/count`` with its JSON report at shard-<index>.json."""
    out = lab.tmp / f"shard-{index}.json"
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state),
                     "--shard", f"{index}/{count}", "--report", f"json:{out}", "-q", *extra)
    assert result.exit_code in (0, 1, 3), result.stderr
    return out
