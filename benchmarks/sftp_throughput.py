"""Throughput of the SFTP backend's two hashing paths over loopback, next to
``ssh host cat file > /dev/null`` and ``rclone md5sum`` on an sftp remote.

    .venv/bin/python benchmarks/sftp_throughput.py [--size-mib 1024] [--runs 5]

Starts the test suite's sshd (tests/servers/sshd.py) on 127.0.0.1; data is in
the page cache (one warm-up read), so this measures the transport and hashing,
not the disk.  Prints one line per method: median seconds and MiB/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from servers.sshd import running_sshd
from threetwoone.backends.interface import Entry, EntryKind
from threetwoone.backends.sftp import SFTPBackend
from threetwoone.inventory import Location


def timed(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            fn()
        except subprocess.CalledProcessError as exc:
            sys.exit(f"{exc.cmd[0]} failed: {exc.stderr[-2000:]!r}")
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--tree-files", type=int, default=4000)
    parser.add_argument("--tree-file-kib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="t321-bench-home-")
    os.makedirs(os.path.join(home, ".ssh"))
    os.environ["HOME"] = home
    os.environ.pop("SSH_AUTH_SOCK", None)
    with running_sshd() as server:
        known = Path(home, ".ssh", "known_hosts")
        known.write_text(server.known_hosts(keytypes=("ed25519", "rsa")))
        data = server.data_dir("bench")
        big = data / "big" / "file.bin"
        big.parent.mkdir()
        with open(big, "wb") as handle:
            for _ in range(args.size_mib):
                handle.write(os.urandom(1 << 20))
        tree = data / "tree"
        for i in range(args.tree_files):
            path = tree / f"d{i % 50:02d}" / f"f{i:05d}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(args.tree_file_kib * 1024))
        subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)
        tree_bytes = args.tree_files * args.tree_file_kib * 1024

        def backend(sftp_only: bool) -> SFTPBackend:
            loc = Location("b", "sftp", "disk", "s", {
                "host": "127.0.0.1", "user": server.user, "root": str(data),
                "port": server.sftp_only_port if sftp_only else server.port,
                "identity_file": str(server.client_key)})
            b = SFTPBackend("b", loc)
            b.connect()
            return b

        ssh = ["ssh", "-q", "-i", str(server.client_key), "-o", "BatchMode=yes",
               "-o", f"UserKnownHostsFile={known}", "-p", str(server.port),
               f"{server.user}@127.0.0.1"]
        rclone = ["rclone", "md5sum", "--sftp-host", "127.0.0.1",
                  "--sftp-port", str(server.port), "--sftp-user", server.user,
                  "--sftp-key-file", str(server.client_key),
                  "--sftp-known-hosts-file", str(known),
                  # An on-the-fly remote cannot save its auto-detection: say it.
                  "--sftp-shell-type", "unix", "--sftp-md5sum-command", "md5sum"]

        rows: list[tuple[str, str, float, int]] = []
        for label, folder, size in (("1 file", "big", big.stat().st_size),
                                    (f"tree {args.tree_files}x{args.tree_file_kib}KiB",
                                     "tree", tree_bytes)):
            for name, sftp_only, workers in (("threetwoone remote xxhsum -H2", False, 1),
                                             ("threetwoone sftp stream", True, 1),
                                             (f"threetwoone remote -j{args.workers}", False,
                                              args.workers),
                                             (f"threetwoone stream -j{args.workers}", True,
                                              args.workers)):
                b = backend(sftp_only)
                entries = [e for e in b.walk(folder)
                           if isinstance(e, Entry) and e.kind is EntryKind.FILE]

                def run(b: SFTPBackend = b, entries: list[Entry] = entries,
                        workers: int = workers, folder: str = folder) -> None:
                    results = list(b.hash_files(folder, entries, ["xxh3_128"],
                                                workers=workers))
                    assert all(r.error is None for r in results)

                rows.append((label, name, timed(run, args.runs), size))
                b.close()
            target = str(data / folder)
            if folder == "big":
                rows.append((label, "ssh host cat file > /dev/null",
                             timed(lambda t=target: subprocess.run(
                                 [*ssh, "cat", t + "/file.bin"], stdout=subprocess.DEVNULL,
                                 check=True),
                                 args.runs), size))
            else:
                rows.append((label, "ssh host 'find | xargs cat' > /dev/null",
                             timed(lambda t=target: subprocess.run(
                                 [*ssh, f"find {t} -type f -print0 | xargs -0 cat"],
                                 stdout=subprocess.DEVNULL, check=True), args.runs), size))
            rows.append((label, "ssh host xxhsum -H2 (no Python)",
                         timed(lambda t=target: subprocess.run(
                             [*ssh, f"find {t} -type f -print0 | xargs -0 xxhsum -H2"],
                             stdout=subprocess.DEVNULL, check=True), args.runs), size))
            for extra, name in (([], "rclone md5sum (remote md5sum)"),
                                (["--download"], "rclone md5sum --download")):
                rows.append((label, name, timed(lambda extra=extra, t=target: subprocess.run(
                    [*rclone, *extra, f":sftp:{t}"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, check=True), args.runs), size))
        print(f"{'data':<22} {'method':<40} {'median s':>9} {'MiB/s':>8}")
        for label, name, seconds, size in rows:
            print(f"{label:<22} {name:<40} {seconds:9.3f} {size / seconds / 2**20:8.0f}")


if __name__ == "__main__":
    main()
