"""Time and peak memory of ``threetwoone validate`` on hostile and on big honest inventories.

    .venv/bin/python benchmarks/hostile_yaml.py [--runs 3] [--datasets 10000]

Each case runs in a fresh process (median wall time, peak RSS from wait4) next to
``threetwoone --version`` (the cost of starting Python and importing the CLI).
Hostile cases must end with exit 4 in about that time and memory: the loader's
bounds (README, "Inventory") stop them before anything big is built.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BILLION_LAUGHS = "version: 1\nlol0: &l0 [" + ", ".join(['"lol"'] * 10) + "]\n" + "".join(
    f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 9)
) + "locations: *l8\ndatasets: {}\n"


def honest(datasets: int) -> str:
    """An inventory as a big group writes it: two locations, two copies per dataset."""
    lines = ["version: 1", "locations:",
             "  nas: {kind: local, root: /srv/nas, media: disk, site: uppsala}",
             "  tape: {kind: local, root: /srv/tape, media: tape, site: kth}", "datasets:"]
    for i in range(datasets):
        lines += [f"  project-P{i:06d}-run1:", "    policy: 3-2-1", "    copies:",
                  f"      - {{location: nas, path: projects/P{i:06d}/run1, primary: true}}",
                  f"      - {{location: tape, path: projects/P{i:06d}/run1}}"]
    return "\n".join(lines) + "\n"


def run(argv: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and exit code of one process."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--datasets", type=int, default=10_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="t321-bench-yaml-"))
    cases = {"billion laughs": BILLION_LAUGHS,
             "nesting 100,000 deep": "version: 1\nx: " + "[" * 100_000 + "\n",
             "integer of 5,000 digits": "version: " + "9" * 5000 + "\n",
             f"honest, {args.datasets:,} datasets": honest(args.datasets)}
    cli = [sys.executable, "-m", "threetwoone"]
    rows = [("threetwoone --version (baseline)", 0, [*cli, "--version"])]
    for name, text in cases.items():
        path = folder / (name.split(",")[0].replace(" ", "-") + ".yaml")
        path.write_text(text)
        rows.append((name, len(text.encode()), [*cli, "validate", str(path)]))
    print(f"{'case':<36} {'bytes':>10} {'exit':>4} {'median s':>9} {'peak RSS':>10}")
    for name, size, argv in rows:
        samples = [run(argv) for _ in range(args.runs)]
        wall = statistics.median(s[0] for s in samples)
        rss = max(s[1] for s in samples)
        print(f"{name:<36} {size:>10,} {samples[0][2]:>4} {wall:>9.2f} {rss / 1024:>7.1f} MB")


if __name__ == "__main__":
    main()
