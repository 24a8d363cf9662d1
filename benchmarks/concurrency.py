"""Copies on different locations audited at the same time (issue 17): three SFTP
locations, each behind a throttling proxy, serial against concurrent.

    .venv/bin/python benchmarks/concurrency.py [--datasets 12] [--mib 4]
                                               [--rate-mib 8] [--delay-ms 5] [--runs 3]

Starts one OpenSSH sshd per location on loopback (tests/servers/sshd.py; its
``internal-sftp`` port, so every byte is streamed to the auditor) and, in front
of each, a TCP proxy started here that slows both directions the same way: each
chunk arrives ``--delay-ms`` late (latency) and at most ``--rate-mib`` MiB/s
pass (bandwidth).  No tc/netem is needed.  Every dataset has one copy on each
location (``--mib`` MiB in 8 files).  After a first audit records the
references, it times ``audit --verify full`` (every byte read again):

* each location alone (an inventory of the same datasets with only that copy);
* all three with ``--parallel 1`` (one copy after another, as before);
* all three with ``--parallel 3`` (locations at once).

Target: concurrent <= 1.3x the slowest location alone.  Prints medians, min-max
and a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

LOCATIONS = ("alpha", "beta", "gamma")
TARGET = 1.3


class Throttle:
    """A TCP proxy from a free loopback port to ``target``: both directions
    delayed by ``delay`` seconds per chunk and capped at ``rate`` bytes/s (one
    budget per direction, shared by every connection, as one link would be)."""

    def __init__(self, target: int, rate: float, delay: float) -> None:
        self.target, self.rate, self.delay = target, rate, delay
        self.port = 0
        self._free_at = {"up": 0.0, "down": 0.0}

    async def start(self) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, up_writer, "up"),
                             self._pipe(up_reader, writer, "down"))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: str) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            while chunk := await reader.read(64 * 1024):
                await queue.put((time.monotonic(), chunk))
            await queue.put((0.0, b""))

        async def write() -> None:
            loop = asyncio.get_running_loop()
            while True:
                arrived, chunk = await queue.get()
                if not chunk:
                    with suppress(OSError):
                        writer.write_eof()
                    return
                # Bandwidth: this chunk's slot on the link; latency: never
                # before it has travelled.
                start = max(loop.time(), self._free_at[direction])
                self._free_at[direction] = start + len(chunk) / self.rate
                until = max(self._free_at[direction], arrived + self.delay)
                await asyncio.sleep(max(0.0, until - loop.time()))
                writer.write(chunk)
                await writer.drain()

        with suppress(OSError, ConnectionError):
            await asyncio.gather(read(), write())
        writer.close()


@contextmanager
def throttles(targets: list[int], rate: float, delay: float) -> Iterator[list[Throttle]]:
    """The proxies, served by an event loop on a thread of their own."""
    loop = asyncio.new_event_loop()
    proxies = [Throttle(port, rate, delay) for port in targets]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    for proxy in proxies:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(timeout=10)
    try:
        yield proxies
    finally:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"exit {done.returncode}: {' '.join(argv)}\n{done.stderr[-3000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=12)
    parser.add_argument("--mib", type=float, default=4.0, help="MiB per copy")
    parser.add_argument("--rate-mib", type=float, default=8.0)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from servers.sshd import start_sshd  # needs pytest (pip install -e '.[test]')

    work = Path(tempfile.mkdtemp(prefix="t321-concurrency-"))
    servers = [start_sshd() for _ in LOCATIONS]
    try:
        file_size = int(args.mib * 1024 * 1024 / 8)
        for server in servers:
            root = server.data_dir("copies")
            for number in range(args.datasets):
                folder = root / f"run{number:03d}"
                folder.mkdir()
                for index in range(8):
                    (folder / f"lane{index}.fastq").write_bytes(
                        (f"@{number}:{index}\n".encode() * (file_size // 8 + 1))[:file_size])
                shutil.chown(folder, server.user)
        with throttles([s.sftp_only_port for s in servers], args.rate_mib * 1024 * 1024,
                       args.delay_ms / 1000) as proxies:
            known_hosts = work / "known_hosts"
            known_hosts.write_text("".join(
                s.known_hosts(port=p.port, keytypes=("ed25519",))
                for s, p in zip(servers, proxies, strict=True)))
            locations = {
                name: {"kind": "sftp", "host": "127.0.0.1", "port": proxy.port,
                       "user": server.user, "root": str(server.data_dir("copies")),
                       "identity_file": str(server.client_key),
                       "known_hosts": str(known_hosts), "timeout": 60,
                       "media": "disk", "site": name}
                for name, server, proxy in zip(LOCATIONS, servers, proxies, strict=True)}
            tool = [sys.executable, "-m", "threetwoone"]

            def inventory(names: tuple[str, ...], file: str) -> tuple[Path, Path]:
                doc = {"version": 1, "policy": "ndsa-storage-1",
                       "locations": {n: locations[n] for n in names},
                       "datasets": {f"run{i:03d}": {"copies": [
                           {"location": n, "path": f"run{i:03d}"} for n in names]}
                           for i in range(args.datasets)}}
                path = work / f"{file}.yaml"
                path.write_text(yaml.safe_dump(doc, sort_keys=False))
                state = work / f"{file}.sqlite3"
                # The first audit records each reference (reading every primary).
                timed([*tool, "audit", str(path), "--state", str(state), "-q"])
                return path, state

            cases: dict[str, list[str]] = {}
            for name in LOCATIONS:
                path, state = inventory((name,), name)
                cases[f"{name} alone"] = [*tool, "audit", str(path), "--state", str(state),
                                          "-q", "--verify", "full", "--parallel", "1"]
            path, state = inventory(LOCATIONS, "all")
            for parallel in (1, 3):
                cases[f"3 locations, --parallel {parallel}"] = [
                    *tool, "audit", str(path), "--state", str(state), "-q", "--verify",
                    "full", "--parallel", str(parallel)]
            samples: dict[str, list[float]] = {label: [] for label in cases}
            for _run in range(args.runs):
                for label, argv in cases.items():  # alternating, A B C A B C ...
                    samples[label].append(timed(argv))
    finally:
        for server in servers:
            server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    medians = {label: statistics.median(values) for label, values in samples.items()}
    slowest = max(medians[f"{name} alone"] for name in LOCATIONS)
    print(f"\n{args.datasets} datasets x {args.mib:g} MiB per copy, 3 SFTP locations, each "
          f"behind a proxy of {args.rate_mib:g} MiB/s and {args.delay_ms:g} ms per chunk; "
          f"audit --verify full, median of {args.runs}\n")
    print("| run | wall time | x slowest alone |")
    print("|---|---|---|")
    for label, values in samples.items():
        print(f"| {label} | {medians[label]:.2f} s ({min(values):.2f}-{max(values):.2f}) | "
              f"{medians[label] / slowest:.2f} |")
    ratio = medians["3 locations, --parallel 3"] / slowest
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"\nconcurrent / slowest alone = {ratio:.2f} (target <= {TARGET}: {verdict}); "
          f"serial / concurrent = "
          f"{medians['3 locations, --parallel 1'] / medians['3 locations, --parallel 3']:.2f}")
    print(f"reproduce: {sys.executable} {' '.join(sys.argv)}")


if __name__ == "__main__":
    os.umask(0o022)
    main()
