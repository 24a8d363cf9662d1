"""What telling hard-linked copies apart costs (README, "Verdicts").

    .venv/bin/python benchmarks/hardlinks.py [--files 1000000] [--copies 3]

Lists ``--copies`` synthetic copies of ``--files`` files each into the workset,
once with every file having one name (the usual case) and once with every file
hard-linked into every copy (an rsnapshot tree, the worst case), and times
``Workset.note_storage`` per copy.  No disk is touched: the listing is made in
memory, so what is measured is the SQLite work alone.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time

from threetwoone.backends import Entry, EntryKind
from threetwoone.workset import Workset


def one_case(files: int, copies: int, links: int) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(os.path.join(folder, "catalog.sqlite3"), isolation_level=None)
        workset = Workset(db)
        workset.reset_storage()
        seconds = []
        for copy in range(copies):
            workset.reset()
            workset.add_listing(
                Entry(f"lane{i % 100}/f{i:07d}.fq", EntryKind.FILE, 1000, 1, f"64769:{i}",
                      {}, links) for i in range(files))
            start = time.perf_counter()
            _listed, shares = workset.note_storage(copy)
            seconds.append(time.perf_counter() - start)
            assert len(shares) == (copy if links > 1 else 0)
        db.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    for links, name in ((1, "one name per file"), (args.copies, "every file hard-linked")):
        seconds = one_case(args.files, args.copies, links)
        shown = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"{name:24} {args.files:>9,} files x {args.copies} copies: "
              f"note_storage per copy {shown} s")


if __name__ == "__main__":
    main()
