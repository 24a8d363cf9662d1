"""Copies on different locations audited at the same time (--parallel N):
the same verdicts and order as a serial run, a location serves one copy at a
time, and an unreachable location is tried once and reported once."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, run_cli, write_tree
from servers.sshd import SSHHome, SSHServer, isolated_home, running_sshd
from threetwoone.connections import Connections
from threetwoone.inventory import Location

FILES = {"a.fastq.gz": b"reads " * 300, "sub/b.txt": b"notes", "sub/c.txt": b"more"}


def varied(lab: Lab, count: int = 9) -> dict[str, Path]:
    """Datasets on three locations (and one unmounted), in every state."""
    roots = {name: lab.location(name, media, site) for name, media, site in (
        ("nas", "disk", "a"), ("tape", "tape", "a"), ("remote", "disk", "b"))}
    lab.location("unmounted", "disk", "c", create=False)
    for number in range(count):
        name = f"ds{number}"
        for root in roots.values():
            write_tree(root / name, FILES)
        copies = [{"location": "nas", "path": name}, {"location": "tape", "path": name},
                  {"location": "remote", "path": name}]
        if number % 4 == 3:
            copies.append({"location": "unmounted", "path": name})
        lab.dataset(name, copies)
    lab.write()
    return roots


def damage(roots: dict[str, Path]) -> None:
    (roots["tape"] / "ds1" / "a.fastq.gz").write_bytes(b"rotten" * 300)
    shutil.rmtree(roots["remote"] / "ds2")
    os.unlink(roots["remote"] / "ds4" / "sub" / "c.txt")
    (roots["nas"] / "ds5" / "extra.txt").write_bytes(b"new")


def comparable(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdicts, without times."""
    out = []
    for dataset in report["datasets"]:
        copies = [{k: v for k, v in c.items() if k != "last_full_verification"}
                  for c in dataset["copies"]]
        out.append({**{k: v for k, v in dataset.items() if k != "duration_seconds"},
                    "copies": copies})
    return out


def both(lab: Lab, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reports of a serial and a concurrent run, each on a catalog of its own
    (named alike in the reports, where next steps spell the catalog)."""
    reports = []
    for parallel in ("1", "4"):
        catalog = lab.tmp / f"catalog-{parallel}.sqlite3"
        result = run_cli("audit", str(lab.inventory), "--state", str(catalog), "--format",
                         "json", "--parallel", parallel, *args)
        assert result.exit_code in (0, 1, 3), result.stderr
        reports.append(json.loads(result.stdout.replace(str(catalog), "CATALOG")))
    return reports[0], reports[1]


def test_parallel_run_gives_the_serial_verdicts_in_inventory_order(lab: Lab) -> None:
    roots = varied(lab)
    serial, concurrent = both(lab)  # first audit: references recorded
    assert comparable(concurrent) == comparable(serial)
    damage(roots)
    for args in ((), ("--verify", "full")):
        serial, concurrent = both(lab, *args)
        assert [d["name"] for d in concurrent["datasets"]] == [f"ds{n}" for n in range(9)]
        assert comparable(concurrent) == comparable(serial)
        assert concurrent["exit_code"] == serial["exit_code"] == 1
        states = {d["name"]: [c["state"] for c in d["copies"]]
                  for d in concurrent["datasets"]}
        assert states["ds1"] == ["intact", "corrupt", "intact"]
        assert states["ds2"] == ["intact", "intact", "missing"]
        assert states["ds3"] == ["intact", "intact", "intact", "unreachable"]
        assert states["ds4"] == ["intact", "intact", "incomplete"]
    assert concurrent["locations"] == serial["locations"]


def test_a_location_serves_one_copy_at_a_time() -> None:
    connections = Connections()
    nas = Location("nas", "local", "disk", "a", {"root": "/"})
    tape = Location("tape", "local", "tape", "a", {"root": "/"})
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with connections.hold(nas):
            order.append("first in")
            inside.set()
            release.wait(timeout=30)
            order.append("first out")

    def second() -> None:
        with connections.hold(nas):
            order.append("second in")

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(timeout=30)
    two = threading.Thread(target=second)
    two.start()
    # Another location is free meanwhile: this returns while the first holds nas.
    with connections.hold(tape):
        order.append("tape")
    release.set()
    one.join(timeout=30)
    two.join(timeout=30)
    assert order.index("tape") < order.index("first out") < order.index("second in")
    # A thread never holds two locations: that could deadlock.
    with connections.hold(nas), pytest.raises(AssertionError), connections.hold(tape):
        pass


@pytest.fixture(scope="module")
def server() -> Any:
    with running_sshd() as started:
        yield started


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SSHHome:
    return isolated_home(tmp_path, monkeypatch)


def test_an_unreachable_location_is_tried_once_and_reported_once(
        lab: Lab, server: SSHServer, home: SSHHome) -> None:
    # The host key is not trusted: refused, with a long explanation and a command.
    nas = lab.location("nas", "disk", "a")
    usb = lab.location("usb", "removable", "a")
    remote = server.data_dir("once")
    lab.locations["backup"] = {"kind": "sftp", "host": "127.0.0.1", "port": server.port,
                               "user": server.user, "root": str(remote),
                               "identity_file": str(server.client_key), "media": "tape",
                               "site": "b"}
    for number in range(20):
        write_tree(nas / f"ds{number}", FILES)
        write_tree(usb / f"ds{number}", FILES)
        lab.dataset(f"ds{number}", [{"location": "nas", "path": f"ds{number}"},
                                    {"location": "usb", "path": f"ds{number}"},
                                    {"location": "backup", "path": f"ds{number}"}])
    lab.write()
    log_before = server.log.stat().st_size
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--format",
                     "json", "--parallel", "4")
    assert result.exit_code == 3, result.stderr
    report = result.json()
    log = server.log.read_bytes()[log_before:].decode(errors="replace")
    assert log.count(f"on 127.0.0.1 port {server.port}") == 1, log
    [location] = [loc for loc in report["locations"] if loc["state"] == "unreachable"]
    assert location["name"] == "backup" and location["kind"] == "sftp"
    assert "is not known" in location["detail"] and "ssh-keyscan" in location["next_step"]
    for number in range(20):
        copy = copy_by_location(report, f"ds{number}", "backup")
        assert copy["state"] == "unreachable"
        assert copy["detail"] == "location backup is unreachable (see locations)"
    table = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "-q")
    assert table.stdout.count(location["detail"]) == 1
    assert table.stdout.count("copy backup:") == 20
    assert table.stdout.count("see locations") == 20
