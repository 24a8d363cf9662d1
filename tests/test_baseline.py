"""A new baseline is loud: when a reference is recorded from a primary copy (the
first audit, a new dataset, or a catalog that was lost), one line says so on
stderr, also under -q, naming the catalog; the JSON says ``reference: recorded``."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from conftest import Lab, dataset_of, refuse_to_open, write_tree

FILES = {"a.fastq": b"ACGT" * 100, "b.fastq": b"TTGA" * 100}


def notice(lab: Lab, result_stderr: str) -> list[str]:
    return [line for line in result_stderr.splitlines() if "new baseline" in line]


def test_first_audit_and_lost_catalog_are_loud_even_quiet(lab: Lab) -> None:
    lab.three_copies(FILES)
    first = lab.audit("-q")
    assert first.exit_code == 0 and first.stdout == ""  # -q: nothing on stdout
    assert notice(lab, first.stderr) == [
        f"threetwoone: new baseline for 1 dataset (ds): the catalog {lab.state} is new, so "
        "the primary copies as they are now became the reference; if an earlier catalog "
        "held references, stop and restore it (--state)"]
    again = lab.audit("-q")
    assert again.exit_code == 0 and again.stderr == "" and again.stdout == ""
    # The catalog is lost (a new machine, a wrong --state): say it, don't just pass.
    for path in lab.state.parent.iterdir():
        path.unlink()
    lost = lab.audit("-q")
    assert lost.exit_code == 0 and lost.stdout == ""
    assert len(notice(lab, lost.stderr)) == 1 and "is new" in lost.stderr


def test_json_says_recorded_then_primary(lab: Lab) -> None:
    lab.three_copies(FILES)
    result = lab.audit("--format", "json")
    assert dataset_of(result.json(), "ds")["reference"] == "recorded"
    assert notice(lab, result.stderr)  # stdout stays pure JSON
    assert dataset_of(lab.audit_json()[1], "ds")["reference"] == "primary"


def test_a_new_dataset_in_a_known_catalog(lab: Lab) -> None:
    lab.three_copies(FILES, name="old")
    assert lab.audit().exit_code == 0
    lab.three_copies(FILES, name="new")
    result = lab.audit("-q")
    assert notice(lab, result.stderr) == [
        f"threetwoone: new baseline for 1 dataset (new): the catalog {lab.state} had no "
        "reference for it, so the primary copies as they are now became the reference; if "
        "an earlier catalog held references, stop and restore it (--state)"]


def test_many_datasets_make_one_line(lab: Lab) -> None:
    for number in range(7):
        lab.three_copies(FILES, name=f"run{number}")
    lines = notice(lab, lab.audit("-q").stderr)
    assert len(lines) == 1
    assert "new baseline for 7 datasets (run0, run1, run2, run3, run4 and 2 more)" in lines[0]


def test_a_producer_manifest_is_no_new_baseline(lab: Lab) -> None:
    manifest = "".join(f"{hashlib.md5(data).hexdigest()}  {name}\n"
                       for name, data in FILES.items()).encode()
    roots = lab.three_copies(FILES, checksums={"file": "checksums.md5"})
    for root in roots:
        write_tree(root, {"checksums.md5": manifest})
    result = lab.audit("-q")
    assert result.exit_code == 0 and notice(lab, result.stderr) == []


def test_a_primary_that_cannot_be_read_whole_records_nothing(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference is written as the primary is read (one transaction): a
    file that cannot be read undoes what was written, and the next audit, with
    the file readable, records it whole.  Tests run as root: EACCES is injected
    at open()."""
    files = {f"f{n:03}.fastq": bytes([n]) * 300 for n in range(40)}
    nas, _tape, _remote = lab.three_copies(files)
    refuse_to_open(monkeypatch, nas, "f030.fastq")
    code, report = lab.audit_json()
    assert code == 3
    assert dataset_of(report, "ds")["reference"] != "recorded"
    with sqlite3.connect(lab.state) as db:
        for table, column in (("reference_files", "dataset"), ("datasets", "name"),
                              ("reference_versions", "dataset")):
            assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = 'ds'"
                              ).fetchone() == (0,), table
        assert db.execute("SELECT COUNT(*) FROM copy_files").fetchone() == (0,)
    monkeypatch.undo()
    code, report = lab.audit_json()
    assert code == 0 and dataset_of(report, "ds")["reference"] == "recorded"
    with sqlite3.connect(lab.state) as db:
        assert db.execute("SELECT COUNT(*), MIN(version), MAX(version) FROM reference_files "
                          "WHERE dataset = 'ds'").fetchone() == (len(files), 1, 1)
