"""Producer manifests: does a glob over many manifests cost more than one manifest?

    .venv/bin/python benchmarks/manifests.py [--files 20000] [--per 100] [--runs 5]

Two trees with the same 20,000 files (4 KiB each, in folders of ``--per`` files),
each as a three-copy dataset on local folders:

* ``one``: a single ``all.md5`` at the root, declared ``{file: all.md5}``;
* ``glob``: one ``FOLDER.md5`` per folder of ``--per`` files (200 manifests),
  declared ``{glob: "**/*.md5"}``: every manifest is found in the primary's
  listing and read, names relative to the manifest's folder.

Each is timed (wall and CPU time of the whole ``threetwoone audit`` process, warm
page cache, runs alternating one/glob) in two situations: a full audit with a fresh
catalog (every byte of the three copies read), and a nightly ``--verify changed``
with a warm catalog (no bytes read: the manifests' share is largest there).  It
prints medians, min-max and the ratio glob/one; the target is <= 1.1.  On a
shared machine under load the CPU time is the steadier of the two.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make_tree(root: Path, files: int, per: int, layout: str) -> None:
    all_lines: list[str] = []
    for folder_index in range(files // per):
        folder = f"S{folder_index:04}"
        lines = []
        (root / folder).mkdir(parents=True)
        for i in range(per):
            name = f"{folder}_L001_R1_{i:03}.fastq.gz"
            data = hashlib.sha256(f"{folder}/{name}".encode()).digest() * 128  # 4 KiB
            (root / folder / name).write_bytes(data)
            digest = hashlib.md5(data).hexdigest()
            lines.append(f"{digest}  {name}\n")
            all_lines.append(f"{digest}  {folder}/{name}\n")
        if layout == "glob":
            (root / folder / f"{folder}.md5").write_text("".join(lines))
    if layout == "one":
        (root / "all.md5").write_text("".join(all_lines))


def inventory(base: Path, layout: str) -> Path:
    checksums = '{file: all.md5}' if layout == "one" else '{glob: "**/*.md5"}'
    text = f"""version: 1
policy: 3-2-1
locations:
  nas: {{kind: local, root: {base}/nas, media: disk, site: a}}
  tape: {{kind: local, root: {base}/tape, media: tape, site: a}}
  remote: {{kind: local, root: {base}/remote, media: disk, site: b}}
datasets:
  ds:
    checksums: {checksums}
    copies:
      - {{location: nas, path: {layout}, primary: true}}
      - {{location: tape, path: {layout}}}
      - {{location: remote, path: {layout}}}
"""
    path = base / f"{layout}.yaml"
    path.write_text(text)
    return path


def run(inventory_path: Path, state: Path, *args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of one audit process.  On a shared,
    loaded machine the CPU time is the steadier measure of the work done."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "threetwoone", "audit", str(inventory_path),
                             "--state", str(state), "-q", *args], capture_output=True,
                            text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"audit exited {result.returncode}: {result.stdout}{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--per", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="t321-manifests-") as tmp:
        base = Path(tmp)
        for layout in ("one", "glob"):
            make_tree(base / "nas" / layout, options.files, options.per, layout)
            for other in ("tape", "remote"):
                shutil.copytree(base / "nas" / layout, base / other / layout)
        inventories = {layout: inventory(base, layout) for layout in ("one", "glob")}
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for situation in ("full", "nightly"):
            for number in range(options.runs + 1):  # the first round warms caches
                for layout in ("one", "glob"):
                    state = base / f"state-{layout}-{situation}.sqlite3"
                    if situation == "full" and state.exists():
                        os.unlink(state)
                    elif situation == "nightly" and not state.exists():
                        run(inventories[layout], state)  # the catalog a night finds
                    args = ("--verify", "changed") if situation == "nightly" else ()
                    measured = run(inventories[layout], state, *args)
                    if number:
                        times.setdefault((situation, layout), []).append(measured)
        print(f"commit {commit}: {options.files} files, {options.files // options.per} "
              f"manifests of {options.per} files vs 1, 3 local copies, "
              f"{options.runs} runs, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        print("| situation | measure | one manifest (median, min-max) | glob (median, min-max) "
              "| ratio glob/one (medians) |")
        print("|---|---|---|---|---|")
        for situation in ("full", "nightly"):
            for index, measure in ((0, "wall"), (1, "CPU")):
                one = [t[index] for t in times[(situation, "one")]]
                glob = [t[index] for t in times[(situation, "glob")]]
                ratio = statistics.median(glob) / statistics.median(one)
                print(f"| {situation} | {measure} | {statistics.median(one):.2f} s "
                      f"({min(one):.2f}-{max(one):.2f}) | {statistics.median(glob):.2f} s "
                      f"({min(glob):.2f}-{max(glob):.2f}) | {ratio:.3f}"
                      f"{'' if ratio <= 1.1 else ' (over 1.1)'} |")


if __name__ == "__main__":
    main()
