"""threetwoone against the peer tools a user would otherwise script together (issue 7).

    .venv/bin/python benchmarks/run.py [--runs 5] [--seed 321] [--data benchmarks/data]
                                       [--scale] [--quick] [--cases full,big,...]

One run generates deterministic data (or reuses it: see ``datagen.py``), warms
the page cache, then times every command of a case ``--runs`` times,
alternating the tools (A B C A B C ...), and prints per command the median,
min-max and peak RSS, and per comparison the ratio and whether the issue's
target is met.  It ends with a markdown table for the README and the command
that reproduces it.

Nothing is installed: a missing peer tool is named with the apt package that
provides it, and only the comparisons that need it are skipped.  The SFTP cases
start a throwaway OpenSSH sshd on 127.0.0.1 with ``tests/servers/sshd.py``
(a shell port where the host hashes with ``xxhsum``, and a ``ForceCommand
internal-sftp`` port where every byte is streamed); that module needs pytest
(``pip install -e '.[test]'``).  Running as root, it logs in as the
unprivileged ``t321-audit`` account, created by that module if absent.

Cases (wall time of the whole process, warm page cache):

* ``full``: full audit of the tree (20,000 files in 2,500 folders, fresh catalog) vs
  ``find | xargs -0 xxhsum -H2`` (sequential), ``hashdeep -r -c md5`` and
  ``find | xargs -0 md5sum`` (no target); ``full-flat`` the same on the flat tree
  (20,000 files in 100 folders of 200, 822 MB: issue 16's case);
* ``big``: the one large file vs ``xxhsum -H2``;
* ``nightly``, ``nightly-flat``: ``--verify changed`` with a warm catalog vs
  ``find -printf '%s %T@\\n'``;
* ``scale`` (only with ``--scale``): 1,000,000 small files, peak RSS and time;
* ``sftp-hash``: the tree as an SFTP copy, hashed on the host, vs ``rclone md5sum``
  on an sftp remote to the same sshd and vs the local full audit;
* ``sftp-stream``: the same through ``internal-sftp`` (no tool on the host) vs
  ``ssh host cat BIGFILE > /dev/null`` (throughput).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import datagen  # noqa: E402
from datagen import DataSet, FileSpec, TreeSpec, human_bytes  # noqa: E402

#: name -> (binary, Debian package that provides it)
PEERS: dict[str, tuple[str, str]] = {
    "xxhsum": ("xxhsum", "xxhash"),
    "hashdeep": ("hashdeep", "hashdeep"),
    "rclone": ("rclone", "rclone"),
    "md5sum": ("md5sum", "coreutils"),
    "find": ("find", "findutils"),
    "xargs": ("xargs", "findutils"),
    "sshd": ("/usr/sbin/sshd", "openssh-server"),
    "ssh": ("ssh", "openssh-client"),
    "ssh-keygen": ("ssh-keygen", "openssh-client"),
    "time": ("/usr/bin/time", "time"),
}
VERSION_ARGS = {"xxhsum": ["--version"], "hashdeep": ["-V"], "rclone": ["version"],
                "ssh": ["-V"], "find": ["--version"], "md5sum": ["--version"]}
COMMAND_TIMEOUT = 3600.0
CASE_KEYS = ("full", "full-flat", "big", "nightly", "nightly-flat", "scale", "sftp-hash",
             "sftp-stream")


@dataclass
class Sizes:
    tree_files: int
    tree_bytes: int
    flat_bytes: int
    big_bytes: int
    scale_files: int
    scale_bytes: int
    runs: int


FULL = Sizes(20_000, 800_000_000, 822_000_000, 2 << 30, 1_000_000, 300_000_000, 5)
QUICK = Sizes(200, 4_000_000, 4_000_000, 8 << 20, 2_000, 600_000, 1)


# --------------------------------------------------------------------- timing


class CommandFailed(Exception):
    pass


@dataclass
class Sample:
    wall: float
    rss_kb: int


class Timer:
    """Runs one command and returns its wall time and peak RSS.

    With ``/usr/bin/time -v`` when present ("Maximum resident set size", the
    largest single process of the command, e.g. of a pipeline); otherwise
    ``os.wait4``'s rusage of the child, which is the same number."""

    def __init__(self, time_bin: str | None, env: dict[str, str], workdir: Path) -> None:
        self.time_bin = time_bin
        self.env = env
        self.rusage_file = workdir / "time-v.txt"

    def run(self, argv: list[str], stdout: Any = subprocess.DEVNULL) -> Sample:
        full = ([self.time_bin, "-v", "-o", str(self.rusage_file), *argv]
                if self.time_bin else argv)
        with tempfile.TemporaryFile() as errors:
            start = time.perf_counter()
            process = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=stdout,
                                       stderr=errors, env=self.env)
            rss_kb = -1
            if self.time_bin:
                try:
                    returncode = process.wait(timeout=COMMAND_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    raise CommandFailed(f"timed out after {COMMAND_TIMEOUT:g} s") from None
                wall = time.perf_counter() - start
                text = self.rusage_file.read_text(errors="replace")
                found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
                rss_kb = int(found.group(1)) if found else -1
            else:
                _pid, status, usage = os.wait4(process.pid, 0)
                wall = time.perf_counter() - start
                returncode = process.returncode = os.waitstatus_to_exitcode(status)
                rss_kb = usage.ru_maxrss
            if returncode != 0:
                errors.seek(0)
                tail = errors.read().decode(errors="replace").strip().splitlines()[-6:]
                raise CommandFailed(f"exit {returncode}: {shlex.join(argv)}\n    "
                                    + "\n    ".join(tail))
        return Sample(wall, rss_kb)


# ---------------------------------------------------------------------- cases


@dataclass
class Command:
    key: str
    label: str
    argv: list[str]
    needs: tuple[str, ...] = ()
    nbytes: int = 0
    #: untimed, before every run (e.g. drop the catalog for a fresh audit)
    before: Callable[[], None] | None = None
    #: untimed once before the timed runs; returns a note, raises on a wrong result
    check: Callable[[], str] | None = None
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def rss_kb(self) -> int:
        return max(s.rss_kb for s in self.samples)

    @property
    def ok(self) -> bool:
        return bool(self.samples) and self.error is None


@dataclass
class Target:
    """A comparison of the case's ``t321`` command with ``peer``.

    ``peer`` is a command key of the same case, or ``"case/key"`` of another.
    ``metric``: ``time`` (ratio = threetwoone time / peer time, lower is
    better), ``throughput`` (ratio = threetwoone bytes/s / peer bytes/s,
    higher is better) or ``rss`` (threetwoone's peak RSS against ``limit`` MB).
    ``limit`` None: shown for information, no target."""

    peer: str
    metric: str
    limit: float | None
    text: str = "-"
    op: str = "<="


@dataclass
class Case:
    key: str
    title: str
    commands: list[Command]
    targets: list[Target]
    warm: list[Path]
    skipped: str | None = None
    #: for the markdown table
    short: str = ""

    def command(self, key: str) -> Command | None:
        return next((c for c in self.commands if c.key == key), None)


@dataclass
class Row:
    case: Case
    target: Target
    t321: Command
    peer: Command
    peer_title: str
    ratio: float | None
    met: bool | None


# ------------------------------------------------------------------- helpers


def fmt_time(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 1 else (
        f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s")


def fmt_rss(kb: int) -> str:
    return "?" if kb < 0 else f"{kb * 1.024:,.0f} kB" if kb < 1000 else (
        f"{kb * 1.024 / 1000:.0f} MB" if kb >= 10_000 else f"{kb * 1.024 / 1000:.1f} MB")


def fmt_rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e6:,.0f} MB/s"


def find_peers() -> tuple[dict[str, str], dict[str, str]]:
    """(present name -> path, missing name -> apt package)."""
    present, missing = {}, {}
    for name, (binary, package) in PEERS.items():
        path = (binary if os.path.isabs(binary) and os.access(binary, os.X_OK)
                else shutil.which(binary) if not os.path.isabs(binary) else None)
        if path:
            present[name] = path
        else:
            missing[name] = package
    return present, missing


def version_of(path: str, args: list[str]) -> str:
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def threetwoone_binary() -> str:
    for candidate in (Path(sys.executable).parent / "threetwoone",
                      REPO / ".venv" / "bin" / "threetwoone"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("threetwoone")
    if not found:
        sys.exit("threetwoone is not installed: .venv/bin/pip install -e '.[test]'")
    return found


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB RAM"
    return (f"{cpu}, {os.cpu_count()} CPUs, {mem}, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def source_state() -> str:
    """The commit the measured code is at, and whether src/ has local changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "source: unknown"
    if not head:
        return "source: not a git checkout"
    return f"source: git {head}" + (" + uncommitted changes in src/" if dirty else "")


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def drop_state(state: Path) -> Callable[[], None]:
    def drop() -> None:
        for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
            Path(f"{state}{suffix}").unlink(missing_ok=True)
    return drop


def report_check(t321: str, argv: list[str], workdir: Path, env: dict[str, str],
                 want_files: int, before: Callable[[], None] | None = None) -> Callable[[], str]:
    """Run the threetwoone command once with a JSON report: it must pass with
    every file present; say how the content was established."""
    def check() -> str:
        if before:
            before()
        report_path = workdir / "check-report.json"
        report_path.unlink(missing_ok=True)
        done = subprocess.run([*argv, "--format", "json", "-o", str(report_path)],
                              capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT)
        if not report_path.is_file():
            raise CommandFailed(f"exit {done.returncode}, no report: {done.stderr.strip()}")
        report = json.loads(report_path.read_text())
        copies = [copy for ds in report["datasets"] for copy in ds["copies"]]
        present = sum(copy["files"]["present"] for copy in copies)
        states = sorted({copy["state"] for copy in copies})
        if report["status"] != "pass" or present != want_files or done.returncode != 0:
            details = "; ".join(str(copy.get("detail") or copy["problems"][:2])
                                for copy in copies)
            raise CommandFailed(f"status {report['status']} (exit {done.returncode}), "
                                f"{present}/{want_files} files, states {states}: {details}")
        methods = sorted({m for copy in copies for m in copy.get("methods", [])})
        verification = sorted({copy["verification"] for copy in copies})
        return (f"pass, {present:,} files, verification {'/'.join(verification)}, "
                f"methods {', '.join(methods)}")
    return check


# ------------------------------------------------------------------ the sshd


class SSHSetup:
    """A throwaway sshd (tests/servers/sshd.py) and client files for every tool."""

    def __init__(self, workdir: Path) -> None:
        sys.path.insert(0, str(REPO / "tests"))
        from servers.sshd import start_sshd  # needs pytest

        self.server = start_sshd()
        self.known_hosts = workdir / "known_hosts"
        self.known_hosts.write_text(self.server.known_hosts(keytypes=("ed25519", "rsa")))
        self.key = self.server.client_key
        self.user = self.server.user

    def ssh_argv(self, ssh: str, *remote: str) -> list[str]:
        return [ssh, "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-p", str(self.server.port),
                f"{self.user}@127.0.0.1", *remote]

    def rclone_remote(self, path: Path) -> str:
        return (f":sftp,host=127.0.0.1,port={self.server.port},user={self.user},"
                f"key_file={self.key},known_hosts_file={self.known_hosts},"
                # As `rclone config` records after probing the host; left to
                # auto-detection, rclone's parallel checkers race the probe and
                # some files come back "hash type not supported".
                f"shell_type=unix,md5sum_command=md5sum:{path}")

    def location(self, root: Path, sftp_only: bool) -> str:
        port = self.server.sftp_only_port if sftp_only else self.server.port
        return (f"    kind: sftp\n    host: 127.0.0.1\n    port: {port}\n"
                f"    user: {self.user}\n    root: {root}\n    identity_file: {self.key}\n"
                f"    known_hosts: {self.known_hosts}\n    timeout: 30\n"
                f"    media: disk\n    site: remote\n")

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.server.workdir, ignore_errors=True)


# -------------------------------------------------------------------- main


def build_cases(args: argparse.Namespace, sizes: Sizes, data: dict[str, DataSet],
                peers: dict[str, str], workdir: Path, env: dict[str, str],
                ssh: SSHSetup | None, ssh_problem: str | None) -> list[Case]:
    t321 = threetwoone_binary()
    root = args.data.resolve()
    sub = "quick/" if args.quick else ""
    policy = write_yaml(workdir / "one-copy.yaml", "name: one-copy\nrequire: {copies: 1}\n")
    datasets = "".join(f"  {name}:\n    copies:\n      - {{location: bench, path: {sub}{name}}}\n"
                       for name in data)
    local_inv = write_yaml(workdir / "local.yaml",
                           f"version: 1\npolicy: {policy}\nlocations:\n  bench:\n"
                           f"    kind: local\n    root: {root}\n    media: disk\n"
                           f"    site: lab\ndatasets:\n{datasets}")
    find, xargs = peers.get("find", "find"), peers.get("xargs", "xargs")

    def audit(inventory: Path, dataset: str, state: Path, *extra: str) -> list[str]:
        return [t321, "audit", str(inventory), "--state", str(state), "-q", "-d", dataset,
                *extra]

    def sh(script: str) -> list[str]:
        return ["sh", "-c", script]

    q = shlex.quote
    cases: list[Case] = []
    # The README's own tree (2,500 folders of 8) and issue 16's (100 folders of
    # 200): the per-folder cost and the per-file cost show in different ratios.
    for key, name, what in (("", "tree", "the tree"), ("-flat", "flat", "the flat tree")):
        tree = data[name]
        folders = f"{tree.folders:,} folder{'s' if tree.folders != 1 else ''}"
        rows = f"{tree.files:,} files in {folders}, {human_bytes(tree.bytes)}"
        xxh_tree = sh(f"{find} {q(str(tree.path))} -type f -print0 | "
                      f"{xargs} -0 {peers.get('xxhsum', 'xxhsum')} -H2 > /dev/null")
        md5_tree = sh(f"{find} {q(str(tree.path))} -type f -print0 | "
                      f"{xargs} -0 {peers.get('md5sum', 'md5sum')} > /dev/null")
        short = rows

        # full audit, fresh catalog
        state = workdir / f"full{key}.sqlite3"
        argv = audit(local_inv, name, state, "--verify", "full")
        cases.append(Case(f"full{key}", f"full audit of {what} ({rows}), fresh catalog", [
            Command("t321", "threetwoone audit --verify full", argv, nbytes=tree.bytes,
                    before=drop_state(state),
                    check=report_check(t321, argv, workdir, env, tree.files,
                                       drop_state(state))),
            Command("xxhsum", "find | xargs -0 xxhsum -H2", xxh_tree,
                    ("find", "xargs", "xxhsum"), tree.bytes),
            Command("hashdeep", "hashdeep -r -c md5",
                    [peers.get("hashdeep", "hashdeep"), "-r", "-c", "md5", str(tree.path)],
                    ("hashdeep",), tree.bytes),
            Command("md5sum", "find | xargs -0 md5sum", md5_tree, ("find", "xargs", "md5sum"),
                    tree.bytes),
        ], [Target("xxhsum", "time", 1.2, "<= 1.2x"),
            Target("hashdeep", "time", 1 / 3.5, "<= 0.29x (3.5x faster)"),
            Target("md5sum", "time", None)], [tree.path],
            short=f"full audit, {short}"))

        # unchanged nightly audit, warm catalog
        state = workdir / f"nightly{key}.sqlite3"
        warm_argv = audit(local_inv, name, state, "--verify", "full")
        argv = audit(local_inv, name, state, "--verify", "changed")

        def warm_catalog(warm_argv: list[str] = warm_argv, state: Path = state,
                         argv: list[str] = argv, files: int = tree.files) -> str:
            drop_state(state)()
            subprocess.run(warm_argv, check=True, env=env, stdout=subprocess.DEVNULL,
                           timeout=COMMAND_TIMEOUT)
            return report_check(t321, argv, workdir, env, files)()

        cases.append(Case(f"nightly{key}",
                          f"unchanged nightly audit of {what} ({rows}), warm catalog", [
            Command("t321", "threetwoone audit --verify changed", argv, check=warm_catalog),
            Command("find", "find -type f -printf '%s %T@\\n'",
                    [find, str(tree.path), "-type", "f", "-printf", "%s %T@\\n"], ("find",)),
        ], [Target("find", "time", 4.0, "<= 4x")], [tree.path],
            short=f"nightly `--verify changed`, {short}, unchanged"))

    tree, big = data["tree"], data["big"]
    rows = f"{tree.files:,} files, {human_bytes(tree.bytes)}"

    # the large file
    state = workdir / "big.sqlite3"
    argv = audit(local_inv, "big", state, "--verify", "full")
    big_file = big.path / "big.bin"
    cases.append(Case("big", f"one {datagen.gib(big.bytes)} file, fresh catalog", [
        Command("t321", "threetwoone audit --verify full", argv, nbytes=big.bytes,
                before=drop_state(state),
                check=report_check(t321, argv, workdir, env, 1, drop_state(state))),
        Command("xxhsum", "xxhsum -H2 FILE",
                [peers.get("xxhsum", "xxhsum"), "-H2", str(big_file)], ("xxhsum",), big.bytes),
    ], [Target("xxhsum", "time", 1.11, "<= 1.11x")], [big.path],
        short=f"one {datagen.gib(big.bytes)} file"))

    if "scale" in data:
        scale = data["scale"]
        state = workdir / "scale.sqlite3"
        argv = audit(local_inv, "scale", state, "--verify", "full")
        cases.append(Case("scale", f"{scale.files:,} small files ({human_bytes(scale.bytes)}), "
                                   "fresh catalog", [
            Command("t321", "threetwoone audit --verify full", argv, nbytes=scale.bytes,
                    before=drop_state(state),
                    check=report_check(t321, argv, workdir, env, scale.files,
                                       drop_state(state))),
            Command("xxhsum", "find | xargs -0 xxhsum -H2",
                    sh(f"{find} {q(str(scale.path))} -type f -print0 | "
                       f"{xargs} -0 {peers.get('xxhsum', 'xxhsum')} -H2 > /dev/null"),
                    ("find", "xargs", "xxhsum"), scale.bytes),
        ], [Target("t321", "rss", 150.0, "peak RSS <= 150 MB"),
            Target("xxhsum", "time", 1.5, "<= 1.5x")], [scale.path],
            short=f"{scale.files:,} small files"))

    # the tree as an SFTP copy
    sftp_cases = [("sftp-hash", "hashed on the host (xxhsum over ssh)", False),
                  ("sftp-stream", "streamed (ForceCommand internal-sftp)", True)]
    for key, how, sftp_only in sftp_cases:
        title = f"the tree ({rows}) as an sftp copy over loopback, {how}, fresh catalog"
        if ssh is None:
            cases.append(Case(key, title, [], [], [], skipped=ssh_problem))
            continue
        inv = write_yaml(workdir / f"{key}.yaml",
                         f"version: 1\npolicy: {policy}\nlocations:\n  remote:\n"
                         f"{ssh.location(root, sftp_only)}datasets:\n  tree:\n    copies:\n"
                         f"      - {{location: remote, path: {sub}tree}}\n")
        state = workdir / f"{key}.sqlite3"
        argv = audit(inv, "tree", state, "--verify", "full")
        t321_cmd = Command("t321", "threetwoone audit --verify full (sftp)", argv,
                           nbytes=tree.bytes, before=drop_state(state),
                           check=report_check(t321, argv, workdir, env, tree.files,
                                              drop_state(state)))
        if not sftp_only:
            if "xxhsum" not in peers:
                cases.append(Case(key, title, [], [], [], skipped=(
                    "xxhsum is missing on the host: apt-get install -y xxhash")))
                continue
            rclone_argv = [peers.get("rclone", "rclone"), "md5sum", "--config", "/dev/null",
                           ssh.rclone_remote(tree.path)]
            cases.append(Case(key, title, [t321_cmd, Command(
                "rclone", "rclone md5sum :sftp:", rclone_argv, ("rclone",), tree.bytes,
                check=rclone_check(rclone_argv, env, tree.files))],
                [Target("rclone", "time", 1.0, "< 1x (faster)", "<"),
                 Target("full/t321", "time", 2.0, "<= 2x")], [tree.path],
                short=f"sftp over loopback, host hashes, {tree.files:,} files"))
        else:
            cat_argv = sh(shlex.join(ssh.ssh_argv(peers.get("ssh", "ssh"), "cat",
                                                  q(str(big_file)))) + " > /dev/null")
            cases.append(Case(key, title, [t321_cmd, Command(
                "sshcat", f"ssh host cat {datagen.gib(big.bytes)} FILE > /dev/null", cat_argv,
                ("ssh",), big.bytes)],
                [Target("sshcat", "throughput", 0.5, ">= 0.5x throughput", ">=")],
                [tree.path, big.path],
                short=f"sftp over loopback, streamed, {tree.files:,} files"))
    cases.sort(key=lambda case: CASE_KEYS.index(case.key))
    return cases


def rclone_check(argv: list[str], env: dict[str, str], files: int) -> Callable[[], str]:
    def check() -> str:
        done = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=COMMAND_TIMEOUT)
        hashed = [line for line in done.stdout.splitlines()
                  if re.match(r"[0-9a-f]{32}  ", line)]
        if done.returncode != 0 or len(hashed) != files:
            raise CommandFailed(f"rclone md5sum: exit {done.returncode}, {len(hashed)}/{files} "
                                f"hashes: {done.stderr.strip()[-400:]}")
        return f"{len(hashed):,} md5 hashes (computed by md5sum on the host)"
    return check


def run_case(case: Case, timer: Timer, runs: int, budget: float, present: dict[str, str],
             missing: dict[str, str]) -> None:
    print(f"\n## {case.key}: {case.title}", flush=True)
    # Other work on the machine shows up as noise (min-max): say how busy it was.
    print("  load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if case.skipped:
        print(f"  SKIPPED: {case.skipped}")
        return
    for command in case.commands:
        lacking = [name for name in command.needs if name not in present]
        if lacking:
            command.error = "missing " + ", ".join(
                f"{name} (apt-get install -y {missing[name]})" for name in lacking)
    for folder in case.warm:
        datagen.warm(folder)
    active = [c for c in case.commands if c.error is None]
    for command in active:
        print(f"  $ {shlex.join(command.argv)}")
    for command in active:
        if command.check:
            try:
                print(f"  check {command.label}: {command.check()}", flush=True)
            except (CommandFailed, subprocess.SubprocessError, OSError, ValueError) as exc:
                command.error = f"check failed: {exc}"
    active = [c for c in active if c.error is None]
    for run in range(runs):
        for command in active:
            if command.error or (run and sum(s.wall for s in command.samples) >= budget):
                continue
            if command.before:
                command.before()
            try:
                command.samples.append(timer.run(command.argv))
            except CommandFailed as exc:
                command.error = str(exc)
        done = ", ".join(f"{c.key} {fmt_time(c.samples[-1].wall)}" for c in active
                         if len(c.samples) == run + 1 and c.error is None)
        print(f"  run {run + 1}/{runs}: {done}", flush=True)
    width = max(len(c.label) for c in case.commands) + 2
    print(f"  {'command':<{width}} {'median':>10} {'min-max':>19} {'peak RSS':>10}  runs  rate")
    for command in case.commands:
        if not command.ok:
            print(f"  {command.label:<{width}} NOT RUN: {command.error}")
            continue
        walls = [s.wall for s in command.samples]
        span = f"{fmt_time(min(walls))[:-2]}-{fmt_time(max(walls))}"
        rate = fmt_rate(command.nbytes, command.median) if command.nbytes else ""
        print(f"  {command.label:<{width}} {fmt_time(command.median):>10} {span:>19} "
              f"{fmt_rss(command.rss_kb):>10}  {len(walls):>4}  {rate}")


def compare(cases: list[Case]) -> list[Row]:
    by_key = {case.key: case for case in cases}
    rows: list[Row] = []
    for case in cases:
        t321 = case.command("t321")
        if case.skipped or t321 is None:
            continue
        for target in case.targets:
            if "/" in target.peer:
                other_key, peer_key = target.peer.split("/")
                other = by_key.get(other_key)
                peer = other.command(peer_key) if other else None
                peer_title = f"threetwoone, {other_key} case" if other else other_key
            else:
                peer = case.command(target.peer)
                peer_title = peer.label if peer else target.peer
            if peer is None:
                continue
            ratio: float | None = None
            met: bool | None = None
            if t321.ok and peer.ok:
                if target.metric == "time":
                    ratio = t321.median / peer.median
                elif target.metric == "throughput":
                    ratio = (t321.nbytes / t321.median) / (peer.nbytes / peer.median)
                if target.limit is not None:
                    value = t321.rss_kb * 1024 / 1e6 if target.metric == "rss" else ratio
                    assert value is not None
                    met = {"<=": value <= target.limit, "<": value < target.limit,
                           ">=": value >= target.limit}[target.op]
            rows.append(Row(case, target, t321, peer, peer_title, ratio, met))
    return rows


def ratio_text(row: Row) -> str:
    if row.target.metric == "rss":
        return "-"
    if row.ratio is None:
        return "n/a"
    return f"{row.ratio:.2f}x" + (" throughput" if row.target.metric == "throughput" else "")


def met_text(row: Row) -> str:
    if row.target.limit is None:
        return "-"
    if row.met is None:
        return "not measured"
    return "met" if row.met else "NOT met"


def cell(command: Command, metric: str) -> str:
    if not command.ok:
        return f"not run ({(command.error or '').splitlines()[0][:60]})"
    text = fmt_time(command.median)
    if metric == "throughput":
        text += f" ({fmt_rate(command.nbytes, command.median)})"
    if metric == "rss":
        text += f", peak RSS {fmt_rss(command.rss_kb)}"
    return text


def print_ratios(rows: list[Row]) -> None:
    print("\n## ratios")
    for row in rows:
        if row.target.metric == "rss":
            print(f"ratio: {row.case.key} peak RSS: {fmt_rss(row.t321.rss_kb)} "
                  f"(threetwoone {cell(row.t321, 'rss')}); target {row.target.text}: "
                  f"{met_text(row)}")
            continue
        print(f"ratio: {row.case.key} vs {row.peer_title}: {ratio_text(row)} "
              f"(threetwoone {cell(row.t321, row.target.metric)}, "
              f"peer {cell(row.peer, row.target.metric)}); target {row.target.text}: "
              f"{met_text(row)}")


def markdown(rows: list[Row], cases: list[Case]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| case | threetwoone median | peer median | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        label = row.case.short or row.case.title
        what = f"{label} vs `{row.peer_title}`"
        if row.target.metric == "rss":
            what = f"{label}: peak RSS"
        elif row.peer_title.startswith("threetwoone"):
            what = f"{label} vs {row.peer_title}"
        lines.append("| " + " | ".join(esc(text) for text in (
            what, cell(row.t321, row.target.metric),
            "-" if row.target.metric == "rss" else cell(row.peer, row.target.metric),
            ratio_text(row), row.target.text, met_text(row))) + " |")
    for case in cases:
        if case.skipped:
            lines.append(f"| {esc(case.short or case.title)} | skipped | | | | "
                         f"{esc(case.skipped)} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark threetwoone against xxhsum, hashdeep, rclone, md5sum, find, ssh.")
    parser.add_argument("--data", type=Path, default=HERE / "data",
                        help="folder for the generated data (default: benchmarks/data)")
    parser.add_argument("--seed", type=int, default=321, help="data seed (default 321)")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per command (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny data (200 files, one 8 MiB file), one run: a smoke test")
    parser.add_argument("--scale", action="store_true",
                        help="also the 1,000,000-file tree (peak RSS case; ~80 s to generate)")
    parser.add_argument("--cases", default="",
                        help=f"comma-separated subset of: {','.join(CASE_KEYS)}; "
                             "none: only generate the data")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="stop repeating a command once its timed runs add up to this "
                             "many seconds (default 300; it always runs at least once)")
    args = parser.parse_args(argv)
    unknown = {c.strip() for c in args.cases.split(",") if c.strip()} - set(CASE_KEYS) - {"none"}
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}; "
                     f"choose from {','.join(CASE_KEYS)} (or none: only generate the data)")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    runs = args.runs or sizes.runs
    wanted = {c.strip() for c in args.cases.split(",") if c.strip()}
    started = time.monotonic()
    print("# threetwoone benchmark (issues 7 and 16)")
    print(f"machine: {machine()}")
    present, missing = find_peers()
    t321 = threetwoone_binary()
    print(f"threetwoone: {version_of(t321, ['--version'])} ({t321}), {source_state()}")
    for name, (binary, package) in PEERS.items():
        if name in present:
            extra = version_of(present[name], VERSION_ARGS[name]) if name in VERSION_ARGS else ""
            print(f"peer {name}: {present[name]}" + (f" ({extra})" if extra else ""))
        else:
            print(f"peer {name}: MISSING ({binary}); install it with "
                  f"`apt-get install -y {package}`; the comparisons that need it are skipped")
    if "time" not in present:
        print("peak RSS from os.wait4 (getrusage of the child) instead of /usr/bin/time -v")

    data_root = args.data.resolve()
    folder = data_root / "quick" if args.quick else data_root
    folder.mkdir(parents=True, exist_ok=True)
    specs: dict[str, TreeSpec | FileSpec] = {
        "tree": TreeSpec("tree", sizes.tree_files, sizes.tree_bytes, 1.5, "fastq", args.seed),
        "flat": TreeSpec("flat", sizes.tree_files, sizes.flat_bytes, 1.5, "flat", args.seed),
        "big": FileSpec("big", sizes.big_bytes, args.seed)}
    if args.scale:
        specs["scale"] = TreeSpec("scale", sizes.scale_files, sizes.scale_bytes, 0.8, "bcl",
                                  args.seed)
    data: dict[str, DataSet] = {}
    for name, spec in specs.items():
        begun = time.monotonic()
        data[name] = (datagen.ensure_tree(folder, spec) if isinstance(spec, TreeSpec)
                      else datagen.ensure_file(folder, spec))
        state = (f"generated in {time.monotonic() - begun:.1f} s" if data[name].generated
                 else "reused (stamp matches)")
        print(f"data {name}: {data[name].path}: {data[name].files:,} files, "
              f"{human_bytes(data[name].bytes)}, {state}", flush=True)
    for path in [data_root, *data_root.parents]:
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o005 != 0o005:
                print(f"note: {path} is not world-readable; the sftp login user may not "
                      "read the data")
                break

    workdir = Path(tempfile.mkdtemp(prefix="t321-bench-"))
    workdir.chmod(0o755)
    home = workdir / "home"
    (home / ".ssh").mkdir(parents=True)
    # PYTHONDONTWRITEBYTECODE would make every run compile threetwoone's source
    # again (~0.1 s): a pip-installed package runs from cached bytecode.
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_AUTH_SOCK", "THREETWOONE_STATE", "RCLONE_CONFIG",
                        "PYTHONDONTWRITEBYTECODE")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               XDG_CONFIG_HOME=str(home / ".config"))
    ssh: SSHSetup | None = None
    ssh_problem: str | None = None
    needs_ssh = not wanted or wanted & {"sftp-hash", "sftp-stream"}
    lacking = [n for n in ("sshd", "ssh", "ssh-keygen") if n not in present]
    if not needs_ssh:
        ssh_problem = "not selected"
    elif lacking:
        ssh_problem = "missing " + ", ".join(f"{n} (apt-get install -y {missing[n]})"
                                             for n in lacking)
    else:
        try:
            ssh = SSHSetup(workdir)
            print(f"sshd: 127.0.0.1 port {ssh.server.port} (shell), "
                  f"{ssh.server.sftp_only_port} (internal-sftp only), login {ssh.user}")
        except ImportError as exc:
            ssh_problem = (f"cannot import tests/servers/sshd.py ({exc}): run with "
                           ".venv/bin/python after pip install -e '.[test]'")
        except BaseException as exc:  # pytest.fail raises an OutcomeException
            if isinstance(exc, KeyboardInterrupt):
                raise
            ssh_problem = f"sshd did not start: {exc}"
    timer = Timer(present.get("time"), env, workdir)
    try:
        cases = build_cases(args, sizes, data, present, workdir, env, ssh, ssh_problem)
        if wanted:
            cases = [case for case in cases if case.key in wanted]
        print(f"\n{runs} timed run(s) per command (fewer once a command's runs add up to "
              f"{args.budget:g} s), tools alternating; page cache warmed first; "
              "wall time of the whole process")
        for case in cases:
            run_case(case, timer, runs, args.budget, present, missing)
        rows = compare(cases)
        print_ratios(rows)
        print("\n## summary (markdown)\n")
        print(markdown(rows, cases))
        again = ["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]
        print(f"\nreproduce: {shlex.join(again)}")
        print(f"total benchmark time: {time.monotonic() - started:.0f} s")
        failed = [c for case in cases for c in case.commands if c.key == "t321" and not c.ok]
        return 1 if failed else 0
    finally:
        if ssh is not None:
            ssh.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
