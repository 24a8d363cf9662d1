"""Overdue fixity in the audit: files a copy has not read in full within the
fixity interval (re-reads cut by --max-read night after night) are counted per
copy and reported, also under -q, with a next step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Lab, copy_by_location, run_cli

DAY = 86400.0
T0 = 1_800_000_000.0
FILES = {f"run/f{i}.fq": b"ACGT" * (200 + i) for i in range(6)}


def at(monkeypatch: pytest.MonkeyPatch, when: float) -> None:
    monkeypatch.setenv("THREETWOONE_NOW", str(when))


def test_reads_cut_by_max_read_become_a_warning_quiet_prints(
        lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lab.three_copies(FILES)
    at(monkeypatch, T0)
    assert lab.audit("-q").exit_code == 0
    at(monkeypatch, T0 + 40 * DAY)
    report = tmp_path / "r.json"
    result = lab.audit("-q", "--max-read", "1B", "--report", f"json:{report}")
    assert result.exit_code == 0  # still intact: cached, just not re-read in time
    for location in ("nas", "tape", "remote"):
        assert (f"  copy {location}:ds: intact - 6 files not read in full within the "
                "fixity interval") in result.stdout
    assert ("    next: let the fixity schedule catch up: raise --max-read or --time-limit, "
            "or audit with --verify full -d ds once") in result.stdout
    data = json.loads(report.read_text())
    assert copy_by_location(data, "ds", "tape")["overdue_files"] == 6
    assert data["datasets"][0]["status"] == "pass"
    # A night without the cap reads what is due: nothing overdue, -q says nothing.
    result = lab.audit("-q", "--report", f"json:{report}")
    assert result.exit_code == 0 and result.stdout == ""
    assert copy_by_location(json.loads(report.read_text()), "ds", "tape")[
        "overdue_files"] == 0


def test_a_copy_never_audited_has_no_count(lab: Lab) -> None:
    lab.three_copies(FILES)
    lab.locations["remote"]["root"] = str(lab.tmp / "unmounted")
    code, report = lab.audit_json()
    assert code == 3
    assert copy_by_location(report, "ds", "remote")["overdue_files"] is None
    assert copy_by_location(report, "ds", "nas")["overdue_files"] == 0


def test_damaged_files_are_not_counted_again_as_overdue(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A corrupt or missing file is reported as such; the report's overdue note
    counts the other files the copy holds that are due a re-read, in any copy
    state.  JSON ``overdue_files`` stays the fixity schedule's count (status's)."""
    _nas, tape, _remote = lab.three_copies(FILES)
    at(monkeypatch, T0)
    assert lab.audit().exit_code == 0
    at(monkeypatch, T0 + DAY)
    (tape / "run/f0.fq").write_bytes(b"ACGT" * 10)  # corrupt (its size changed)
    assert lab.audit_json()[0] == 1
    code, report = lab.audit_json()
    tape_copy = copy_by_location(report, "ds", "tape")
    # JSON counts it as status does (it is unverified); the report's note does not.
    assert tape_copy["state"] == "corrupt" and tape_copy["overdue_files"] == 1
    result = lab.audit()
    assert "not read in full" not in result.stdout

    # 40 days on, the schedule is capped: every file is due, none is re-read.
    at(monkeypatch, T0 + 40 * DAY)
    (tape / "run/f1.fq").unlink()
    result = lab.audit("--max-read", "1B")
    assert result.exit_code == 1, result.stdout
    assert ("  copy tape:ds: corrupt - 4 files not read in full within the fixity "
            "interval") in result.stdout  # f0 corrupt and f1 missing are said apart
    assert "    missing: run/f1.fq" in result.stdout and "    corrupt: run/f0.fq" in result.stdout
    code, report = lab.audit_json("--max-read", "1B")
    assert code == 1
    assert [copy_by_location(report, "ds", name)["overdue_files"]
            for name in ("nas", "tape", "remote")] == [6, 6, 6]
    # status tells the fixity schedule: a damaged file is unverified there too.
    result = run_cli("status", str(lab.inventory), "--state", str(lab.state),
                     "--format", "json")
    assert result.exit_code == 1, result.stderr
    [tape_row] = [c for c in json.loads(result.stdout)["copies"]
                  if c["copy"].endswith("/tape/ds")]
    assert tape_row["overdue_files"] == 6
