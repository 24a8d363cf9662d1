"""Audit time of one tree on a real XRootD (loopback): server digests vs forced download.

    .venv/bin/python benchmarks/webdav_xrootd.py [--files 64] [--size-mib 16] [--small 512]
                                                [--runs 5] [--jobs 1]

Measures what the auditor does for a WebDAV copy (stat_root, walk, hash_files)
three ways on the same data, each ``--runs`` times, and prints the medians:

* ``digest (stored)``: ``Want-Digest`` answered from the checksum XRootD keeps
  in an extended attribute, as dCache answers from its database;
* ``digest (cold)``: the same, after dropping those attributes, so XRootD reads
  each file once to compute the checksum (a server without stored checksums);
* ``forced download``: every byte over HTTP, hashed here (xxh3_128 + adler32 + md5).

It also times the whole CLI (``threetwoone audit --verify full``) on an
inventory with a local primary and the XRootD copy, with and without
``--force-download``.  Loopback has no network cost, so the download numbers
are a floor: on a WAN link to national storage the gap is far larger.
"""

from __future__ import annotations

import argparse
import os
import pwd
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from servers.xrootd import XRootDServer, make_readable  # noqa: E402
from threetwoone.backends.webdav import WebDAVBackend  # noqa: E402
from threetwoone.inventory import Location  # noqa: E402


def write_tree(root: Path, files: int, size: int, small: int) -> int:
    total = 0
    block = os.urandom(1 << 20)
    for i in range(files):
        path = root / f"big/{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            left = size
            while left:
                chunk = block[: min(left, len(block))]
                handle.write(chunk[:-8] + i.to_bytes(8, "big") if len(chunk) >= 8 else chunk)
                left -= len(chunk)
        total += size
    for i in range(small):
        path = root / f"small/{i // 100:02d}/{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(4096)
        path.write_bytes(data)
        total += len(data)
    return total


def drop_stored_checksums(root: Path) -> None:
    for folder, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(folder, name)
            for attr in os.listxattr(full):
                if attr.startswith("user.XrdCks."):
                    os.removexattr(full, attr)


def audit_copy(url: str, path: str, force: bool, jobs: int) -> tuple[float, set[str]]:
    backend = WebDAVBackend("xrootd", Location("xrootd", "webdav", "object", "b", {"url": url}))
    start = time.perf_counter()
    backend.connect()
    assert backend.stat_root(path) is not None
    entries = [e for e in backend.walk(path) if hasattr(e, "kind")]
    algorithms = ["xxh3_128", *backend.digest_algorithms()]
    methods = set()
    for result in backend.hash_files(path, entries, algorithms,  # type: ignore[arg-type]
                                     force_full=force, workers=jobs):
        assert result.error is None, result
        methods.add(result.method)
    elapsed = time.perf_counter() - start
    backend.close()
    return elapsed, methods


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--size-mib", type=int, default=16)
    parser.add_argument("--small", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    server = XRootDServer().start()
    try:
        tree = server.data / "bench"
        total = write_tree(tree, args.files, args.size_mib << 20, args.small)
        make_readable(tree)
        if os.geteuid() == 0:  # let XRootD store checksums in xattrs, as on real storage
            nobody = pwd.getpwnam("nobody")
            for folder, _dirs, names in os.walk(tree):
                os.chown(folder, nobody.pw_uid, nobody.pw_gid)
                for name in names:
                    os.chown(os.path.join(folder, name), nobody.pw_uid, nobody.pw_gid)
        count = args.files + args.small
        print(f"tree: {count} files, {total / 2**20:.0f} MiB; runs={args.runs}, "
              f"jobs={args.jobs}; xrootd {server.url}")
        restarts = 0

        def measure(force: bool) -> tuple[float, set[str]]:
            """One audit; Debian's xrootd 5.5.3 now and then dies with SIGSEGV
            while computing checksums (about once in several thousand): then
            it is restarted on the same data and the run is repeated."""
            nonlocal restarts
            for _attempt in range(3):
                try:
                    return audit_copy(server.url, "bench", force, args.jobs)
                except Exception:
                    if server.proc is None or server.proc.poll() is None:
                        raise
                    restarts += 1
                    server.start()
            raise RuntimeError("xrootd keeps crashing")

        measure(False)  # stores the checksums
        times: dict[str, list[float]] = {"digest (stored)": [], "digest (cold)": [],
                                         "forced download": []}
        for _ in range(args.runs):
            elapsed, methods = measure(False)
            assert methods == {"digest"}, methods
            times["digest (stored)"].append(elapsed)
            drop_stored_checksums(tree)
            elapsed, methods = measure(False)
            assert methods == {"digest"}, methods
            times["digest (cold)"].append(elapsed)
            elapsed, methods = measure(True)
            assert methods == {"full"}, methods
            times["forced download"].append(elapsed)
        if restarts:
            print(f"(xrootd crashed and was restarted {restarts} time(s); "
                  "those runs were repeated)")
        for name, values in times.items():
            print(f"backend  {name:16s} median {statistics.median(values):7.3f} s  "
                  f"(min {min(values):.3f}, max {max(values):.3f}, "
                  f"{total / 2**20 / statistics.median(values):.0f} MiB/s)")
        cli(server, tree, args.runs, args.jobs)
    finally:
        server.cleanup()


def cli(server: XRootDServer, tree: Path, runs: int, jobs: int) -> None:
    """The whole audit through the CLI: local primary + XRootD copy."""
    import shutil

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        primary = Path(tmp) / "nas" / "bench"
        shutil.copytree(tree, primary)
        inventory = Path(tmp) / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({
            "version": 1, "policy": "3-2-1",
            "locations": {
                "nas": {"kind": "local", "root": str(primary.parent), "media": "disk",
                        "site": "a"},
                "xrootd": {"kind": "webdav", "url": server.url, "media": "object",
                           "site": "b"}},
            "datasets": {"bench": {"copies": [{"location": "nas", "path": "bench"},
                                              {"location": "xrootd", "path": "bench"}]}}}))
        state = Path(tmp) / "state.sqlite3"
        base = [sys.executable, "-m", "threetwoone", "audit", str(inventory), "--state",
                str(state), "--format", "json", "--verify", "full", "-j", str(jobs)]
        subprocess.run(base, capture_output=True, check=False)  # records the reference
        for label, extra in (("digest", []), ("forced download", ["--force-download"])):
            values = []
            for _ in range(runs):
                start = time.perf_counter()
                done = subprocess.run(base + extra, capture_output=True, text=True)
                values.append(time.perf_counter() - start)
                assert done.returncode in (0, 1), done.stderr
                assert '"verification": "' + ("digest" if not extra else "full") in \
                    done.stdout.replace('": "', '": "'), done.stdout[:2000]
            print(f"cli      {label:16s} median {statistics.median(values):7.3f} s  "
                  f"(min {min(values):.3f}, max {max(values):.3f})")


if __name__ == "__main__":
    main()
