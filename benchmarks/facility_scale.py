"""Memory and time at facility scale: one collection of 2,000 datasets over
three local locations (issue 17).

    .venv/bin/python benchmarks/facility_scale.py [--datasets 2000] [--files 5]
                                                  [--runs 3] [--keep DIR]

Generates a lab NAS with ``--datasets`` project folders (``ngi/P<number>``,
``--files`` small files each), the same on a USB disk and an off-site backup,
an inventory with one collection and a coverage check, then times in fresh
processes (wall time, peak RSS from ``os.wait4``):

* ``datasets``: ``threetwoone datasets INVENTORY`` (lists the collection);
* ``first audit``: records every reference (each file read once per copy);
* ``nightly audit``: the same inventory again, nothing changed (the default
  ``--verify scheduled``: changed files plus a thirtieth of the rest re-read);
* ``nightly, -q``: the same with ``-q`` (a cron job's output: none).

Prints the median and min-max per command, and a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def make_data(root: Path, datasets: int, files: int) -> Path:
    """The three locations and the inventory; returns the inventory's path."""
    locations = {"lab-nas": ("disk", "uppsala", "ngi"),
                 "usb-disk": ("removable", "uppsala", "ngi"),
                 "kth-backup": ("disk", "stockholm", "projects/ngi")}
    for name, (_media, _site, below) in locations.items():
        for number in range(datasets):
            folder = root / name / below / f"P{100000 + number}"
            folder.mkdir(parents=True)
            for index in range(files):
                (folder / f"S{index}_R1_001.fastq").write_bytes(
                    f"@P{number}:{index}\n".encode() * 64)
    inventory = {
        "version": 1,
        "locations": {name: {"kind": "local", "root": str(root / name), "media": media,
                             "site": site}
                      for name, (media, site, _below) in locations.items()},
        "collections": {"ngi": {"location": "lab-nas", "glob": "ngi/P*", "copies": [
            {"location": "usb-disk", "path": "ngi/{name}"},
            {"location": "kth-backup", "path": "projects/{path}"}]}},
        "coverage": [{"location": "lab-nas", "path": "ngi", "depth": 1}],
    }
    path = root / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def timed(argv: list[str], expect: int = 0) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != expect:
        assert process.stderr is not None
        raise SystemExit(f"exit {code} (expected {expect}): {' '.join(argv)}\n"
                         + process.stderr.read().decode(errors="replace")[-2000:])
    return wall, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate into (and keep) this folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="t321-facility-"))
    try:
        if not (root / "inventory.yaml").exists():
            started = time.perf_counter()
            inventory = make_data(root, args.datasets, args.files)
            print(f"generated {args.datasets} datasets x 3 copies x {args.files} files in "
                  f"{time.perf_counter() - started:.1f} s under {root}")
        inventory = root / "inventory.yaml"
        tool = [sys.executable, "-m", "threetwoone"]
        state = root / "state.sqlite3"
        cases: list[tuple[str, list[str]]] = [
            ("datasets", [*tool, "datasets", str(inventory), "--state", str(state)]),
            ("nightly audit", [*tool, "audit", str(inventory), "--state", str(state),
                               "--format", "json", "-o", str(root / "report.json")]),
            ("nightly, -q", [*tool, "audit", str(inventory), "--state", str(state), "-q"]),
        ]
        for path in root.glob("state.sqlite3*"):
            path.unlink()
        wall, rss = timed([*tool, "audit", str(inventory), "--state", str(state), "-q"])
        results = {"first audit": [(wall, rss)]}
        print(f"first audit: {wall:.2f} s, peak RSS {rss / 1024:.0f} MiB")
        for _run in range(args.runs):
            for label, argv in cases:
                results.setdefault(label, []).append(timed(argv))
        print(f"\n{args.datasets} datasets from one collection, 3 local locations, "
              f"{args.files} files per copy ({3 * args.datasets * args.files} files); "
              f"median of {args.runs} (first audit: once)\n")
        print("| command | wall time | peak RSS |")
        print("|---|---|---|")
        for label, samples in results.items():
            walls = [w for w, _r in samples]
            rss = max(r for _w, r in samples)
            spread = f" ({min(walls):.2f}-{max(walls):.2f})" if len(walls) > 1 else ""
            print(f"| {label} | {statistics.median(walls):.2f} s{spread} | "
                  f"{rss / 1024:.0f} MiB |")
        print(f"\nreproduce: {sys.executable} {' '.join(sys.argv)}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
