"""audit --parallel on a night with a new dataset: its first audit, the
reference read from a (big, slow) primary, must not keep every other worker
from writing the catalog meanwhile (a first night of 12 TB projects took hours
before the other workers' writes timed out: 'database is locked', exit 5)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Lab, run_cli, write_tree
from threetwoone import catalog, copyaudit
from threetwoone.audit import Auditor

FILES = {"a.fastq.gz": b"reads " * 300, "sub/b.txt": b"notes"}

#: Long enough for any honest wait on a worker's commit in this test.
WAIT = 60.0


def test_a_first_audit_does_not_hold_the_catalog_while_reading(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each dataset on locations of its own: a location serves one copy at a time.
    roots = {}
    for name in ("known", "new"):
        for kind, media, site in (("nas", "disk", "a"), ("tape", "tape", "a"),
                                  ("remote", "disk", "b")):
            roots[name, kind] = lab.location(f"{kind}-{name}", media, site)
            write_tree(roots[name, kind] / name, FILES)
        lab.dataset(name, [{"location": f"{kind}-{name}", "path": name}
                           for kind in ("nas", "tape", "remote")])
    lab.write()
    # Last night: only 'known' was declared.
    assert run_cli("audit", str(lab.inventory), "--state", str(lab.state), "-q",
                   "-d", "known").exit_code == 0
    # Tonight 'new' is read for the first time, slowly (its primary is big): it
    # is still being read while 'known' is audited and written.
    monkeypatch.setattr(catalog, "WORKER_BUSY_TIMEOUT", 0.5)
    reading_new, known_done = threading.Event(), threading.Event()
    real_hash_items = copyaudit.hash_items

    def slow_hash_items(ctx: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        if ctx.dataset.name == "new":
            reading_new.set()
            assert known_done.wait(WAIT)
        yield from real_hash_items(ctx, *args, **kwargs)

    real_audit_dataset = Auditor.audit_dataset

    def audit_dataset(self: Auditor, dataset: Any) -> Any:
        if dataset.name != "known":
            return real_audit_dataset(self, dataset)
        assert reading_new.wait(WAIT)
        try:
            return real_audit_dataset(self, dataset)
        finally:
            known_done.set()

    monkeypatch.setattr(copyaudit, "hash_items", slow_hash_items)
    monkeypatch.setattr(Auditor, "audit_dataset", audit_dataset)
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "--format",
                     "json", "--parallel", "2")
    assert result.exit_code == 0, result.stderr
    assert [(d["name"], d["status"]) for d in result.json()["datasets"]] == [
        ("known", "pass"), ("new", "pass")]
    # And the reference made so is the one later audits compare with.
    (roots["new", "tape"] / "new" / "a.fastq.gz").write_bytes(b"rotten" * 300)
    monkeypatch.undo()
    assert run_cli("audit", str(lab.inventory), "--state", str(lab.state), "-q",
                   "--verify", "full").exit_code == 1
