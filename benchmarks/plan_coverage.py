"""What file-level coverage and a repair's file grouping cost (README, "Planning
repairs").

    .venv/bin/python benchmarks/plan_coverage.py [--files 1000000] [--copies 3]

Fills a catalog with one dataset of ``--files`` reference files and ``--copies``
copies holding them (every 10th file corrupt on the second copy, every 7th
missing from the third), then times ``replicas.coverage`` (the audit report's
files_at_risk/files_lost and the plan's first step) and ``replicas.shares``
(a repair's files grouped by source), and reports the peak RSS: it must not
grow with the number of files.  No storage is touched.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from threetwoone.catalog import Catalog
from threetwoone.repair import replicas


def fill(catalog: Catalog, files: int, copies: int) -> list[str]:
    keys = [f"ds/loc{n}/ds" for n in range(copies)]
    db = catalog.db
    with catalog.transaction():
        db.executemany("INSERT INTO reference_files (dataset, path, size, digests, version) "
                       "VALUES ('ds', ?, 1000, '{}', 1)",
                       ((f"f{i:09d}".encode(),) for i in range(files)))
        for number, key in enumerate(keys):
            db.executemany(
                "INSERT INTO copy_files (copy, path, size, result, ref_version) "
                "VALUES (?, ?, 1000, ?, 1)",
                ((key, f"f{i:09d}".encode(), "corrupt" if number == 1 and i % 10 == 0
                  else "ok") for i in range(files) if not (number == 2 and i % 7 == 0)))
    return keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, \
            Catalog(os.path.join(folder, "catalog.sqlite3")) as catalog:
        began = time.perf_counter()
        keys = fill(catalog, args.files, args.copies)
        print(f"filled {args.files} files x {args.copies} copies in "
              f"{time.perf_counter() - began:.1f} s")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        began = time.perf_counter()
        found = replicas.coverage(catalog.db, "ds", keys, 3)
        print(f"coverage: {time.perf_counter() - began:.2f} s ({found.at_risk} at risk, "
              f"{found.lost} lost)")
        began = time.perf_counter()
        shares = replicas.shares(catalog.db, "ds", keys[1], [keys[0], keys[2]], keys)
        print(f"shares of a repair: {time.perf_counter() - began:.2f} s "
              f"({', '.join(f'{s.files} files from source {s.source}' for s in shares)})")
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"peak RSS {rss_after / 1024:.0f} MiB (after filling: {rss_before / 1024:.0f} "
              "MiB)")


if __name__ == "__main__":
    main()
