"""Local copies hashed in worker processes: same verdicts, a dead worker never
makes a PASS, and an interrupted or killed audit leaves no worker behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, dataset_of
from threetwoone.backends import hashpool, localhash

#: Enough files for the worker processes to start (hashpool.MIN_FILES).
MANY = {f"lane{i % 4}/f{i:04d}.fq": os.urandom(100 + i * 7 % 3000) for i in range(400)}


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def wait_until_gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    """Poll (bounded) until none of ``pids`` exists; return the ones left."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {pid for pid in pids if _exists(pid)}
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _exists(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie reaped by init soon is gone too


@pytest.mark.slow
def test_workers_and_in_process_give_the_same_verdicts(lab: Lab) -> None:
    _nas, tape, _remote = lab.three_copies(MANY)
    assert lab.audit_json("-j", "2")[0] == 0
    (tape / "lane1" / "f0005.fq").write_bytes(b"changed")
    (tape / "lane2" / "f0006.fq").unlink()
    results = {}
    for jobs in ("1", "2", "3"):
        code, report = lab.audit_json("-j", jobs, "--verify", "full")
        copy = copy_by_location(report, "ds", "tape")
        results[jobs] = (code, copy["state"], copy["files"],
                         sorted((p["path"], p["problem"]) for p in copy["problems"]))
    assert results["1"] == results["2"] == results["3"]
    assert results["2"][:2] == (1, "corrupt")


@pytest.mark.slow
def test_odd_names_cross_the_pipe_to_the_workers(lab: Lab) -> None:
    """Names that are not UTF-8 or hold newlines reach the workers and come back
    exactly (the batches are marshalled, surrogate escapes included)."""
    odd: dict[str | bytes, bytes] = {b"lane0/caf\xe9.fq": b"latin-1 name",
                                     "lane0/two\nlines.fq": b"newline", "lane0/tab\t.fq": b"t"}
    files: dict[str | bytes, bytes] = {name: data for name, data in [*MANY.items(), *odd.items()]}
    _nas, tape, _remote = lab.three_copies(files)
    assert lab.audit_json("-j", "2")[0] == 0
    with open(os.path.join(os.fsencode(tape), b"lane0/caf\xe9.fq"), "wb") as handle:
        handle.write(b"latin-1 nam!")
    code, report = lab.audit_json("-j", "2", "--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (1, "corrupt")
    assert [p["path"] for p in copy["problems"]] == ["lane0/caf\\xe9.fq"]


@pytest.mark.slow
def test_a_worker_that_dies_makes_its_files_unreadable_never_intact(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed (the OOM killer, an admin) while it holds files: those
    files are unreadable, the copy is error, and the other worker finishes."""
    _nas, tape, _remote = lab.three_copies(MANY)
    assert lab.audit_json()[0] == 0
    real = localhash.hash_tasks
    victim = "lane1/f0101.fq"

    def dying(root_fd: int, tasks: Sequence[Any], *args: Any) -> Iterator[Any]:
        # Runs in a worker process: the one handed the victim kills itself.
        if any(task[0] == victim for task in tasks) and os.fstat(root_fd).st_ino == \
                tape.stat().st_ino:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(root_fd, tasks, *args)

    monkeypatch.setattr(hashpool, "hash_tasks", dying)
    code, report = lab.audit_json("-j", "2", "--verify", "full")
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (3, "error")
    assert dataset_of(report, "ds")["status"] == "unknown"
    lost = {p["path"]: p for p in copy["problems"]}
    assert victim in lost
    assert all(p["problem"] == "unreadable" and p["detail"] ==
               "the hashing process stopped (killed by signal 9) before reading it"
               for p in lost.values())
    # Only the batches it held: the other worker hashed the rest.
    assert len(lost) <= hashpool.IN_FLIGHT * hashpool.BATCH_FILES
    assert copy["files"]["present"] == len(MANY)
    assert copy_by_location(report, "ds", "nas")["state"] == "intact"
    monkeypatch.undo()
    assert lab.audit_json("--verify", "full")[0] == 0


# -- an audit stopped from outside ------------------------------------------------------

#: Runs the real CLI, but once the workers have hashed a first batch it writes
#: their pids to a file and blocks reading a FIFO nobody writes: the test then
#: stops it the way a user or a scheduler would, at a known moment.
PAUSED_AUDIT = textwrap.dedent("""
    import json, os, sys
    from threetwoone.backends import hashpool, localhash
    from threetwoone.cli import main

    pids_file, fifo = sys.argv[1], sys.argv[2]
    real = hashpool.HashPool.hash

    def paused(self, *args, **kwargs):
        for number, item in enumerate(real(self, *args, **kwargs)):
            if number == 0:
                workers = [w.pid for w in self._workers.values()]
                with open(pids_file + ".tmp", "w") as out:
                    json.dump({"audit": os.getpid(), "workers": workers}, out)
                os.replace(pids_file + ".tmp", pids_file)
                os.read(os.open(fifo, os.O_RDONLY), 1)  # blocks until stopped
            yield item

    hashpool.HashPool.hash = paused
    sys.argv = ["threetwoone", *sys.argv[3:]]
    main()
""")


def start_paused_audit(lab: Lab) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    lab.three_copies(MANY)
    lab.write()
    script = lab.tmp / "paused_audit.py"
    script.write_text(PAUSED_AUDIT)
    pids_file = lab.tmp / "pids.json"
    fifo = lab.tmp / "never-written"
    os.mkfifo(fifo)
    # A session of its own: a Ctrl-C reaches its whole process group.
    proc = subprocess.Popen(
        [sys.executable, str(script), str(pids_file), str(fifo), "audit",
         str(lab.inventory), "--state", str(lab.state), "-j", "2", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not pids_file.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the audit never reached its first batch"
        time.sleep(0.02)
    pids = json.loads(pids_file.read_text())
    assert len(pids["workers"]) == 2
    assert set(pids["workers"]) <= children_of(proc.pid)
    return proc, pids


@pytest.mark.slow
def test_ctrl_c_stops_the_audit_and_its_workers(lab: Lab) -> None:
    proc, pids = start_paused_audit(lab)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "threetwoone: interrupted"
    # Reaped by the audit itself before it exited: not even zombies are left.
    assert not wait_until_gone(set(pids["workers"]), timeout=0)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_audit_leaves_no_worker_behind(lab: Lab, how: signal.Signals) -> None:
    proc, pids = start_paused_audit(lab)
    os.kill(proc.pid, how)  # only the audit: its workers must notice alone
    proc.communicate(timeout=60)
    assert proc.returncode == -how
    assert not wait_until_gone(set(pids["workers"]))
    # And the catalog is usable: the next audit completes and passes.
    code, _report = lab.audit_json("-j", "2")
    assert code == 0


def test_a_first_audit_reads_the_primary_as_it_is_walked(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a progress line to show its totals first, the primary a reference
    is made from is walked as its files are read (the workers start on its first
    folders); a copy compared with the reference is listed whole first.  The
    walk is pulled as the workers need files (two batches of 64 in flight each),
    so with 400 files the first result comes back before the walk has ended."""
    from threetwoone.backends.local import LocalBackend

    lab.three_copies(MANY)
    events: list[tuple[str, str]] = []
    walk, hash_files = LocalBackend.walk, LocalBackend.hash_files

    def watched_walk(self: LocalBackend, path: str) -> Iterator[Any]:
        yield from walk(self, path)
        events.append(("walked", self.location.name))

    def watched_hash(self: LocalBackend, path: str, *args: Any, **kwargs: Any
                     ) -> Iterator[Any]:
        for number, result in enumerate(hash_files(self, path, *args, **kwargs)):
            if number == 0:
                events.append(("hashed", self.location.name))
            yield result

    monkeypatch.setattr(LocalBackend, "walk", watched_walk)
    monkeypatch.setattr(LocalBackend, "hash_files", watched_hash)
    code, report = lab.audit_json("-j", "2")
    assert code == 0 and dataset_of(report, "ds")["reference"] == "recorded"

    def order(location: str) -> list[str]:
        return [what for what, where in events if where == location]

    assert order("nas") == ["hashed", "walked"]  # the primary: read as it was walked
    assert order("tape") == order("remote") == ["walked", "hashed"]  # listed, compared
