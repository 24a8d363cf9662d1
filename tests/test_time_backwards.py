"""A clock that was wrong once must not buy years of trust: verification times
later than now (a run on a host whose clock was ahead, a catalog restored from
another machine) count as never verified, end to end through the CLI."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conftest import Lab, copy_by_location, rot_in_place, run_cli
from threetwoone.schedule import NightlyPlanner, VerifyPlan

DAY = 86400.0
T0 = 1_700_000_000.0
#: A clock five years ahead (a dead RTC battery, a VM restored with a wrong date).
AHEAD = T0 + 5 * 365 * DAY
#: Thirty files of 1,000 bytes: a read cap of 1,000 bytes re-reads one of them.
FILES = {f"f{i:02d}.bin": os.urandom(1000) for i in range(30)}


def audit_at(lab: Lab, monkeypatch: pytest.MonkeyPatch, when: float,
             *args: str) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("THREETWOONE_NOW", str(when))
    return lab.audit_json(*args)


def test_a_file_verified_under_a_clock_ahead_is_read_again(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """One night ran with the clock five years ahead and re-read f00 (a read
    cap of one file).  Weeks later f00 rots on the tape copy.  Every other
    file is due and re-read; f00's last full read looks five years away from
    being due: it was trusted, the copy counted as verified now (``max_age``
    of fixity-90d met) and the audit passed.  A full read dated in the future
    proves nothing about when the bytes were last read: f00 is read again."""
    _nas, tape, _remote = lab.three_copies(FILES)
    lab.top["policy"] = "fixity-90d"
    assert audit_at(lab, monkeypatch, T0)[0] == 0
    _code, report = audit_at(lab, monkeypatch, AHEAD, "--max-read", "1000")
    assert copy_by_location(report, "ds", "tape")["bytes_read"] == 1000
    rot_in_place(tape / "f00.bin", 10)

    code, report = audit_at(lab, monkeypatch, T0 + 95 * DAY)
    copy = copy_by_location(report, "ds", "tape")
    assert (code, copy["state"]) == (1, "corrupt"), copy
    assert [p["path"] for p in copy["problems"]] == ["f00.bin"]
    ds = report["datasets"][0]
    assert any("later than now" in w and "tape:ds" in w for w in ds["warnings"]), ds


def test_a_catalog_written_under_a_clock_ahead_is_not_fresh(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole catalog was written with the clock ahead.  Back on time, no
    copy may count as fully verified within ``max_age`` on the strength of
    those dates (the audit said "verified now"), and ``status`` must not call
    the copies up to date."""
    lab.three_copies(FILES)
    lab.top["policy"] = "fixity-90d"
    assert audit_at(lab, monkeypatch, AHEAD)[0] == 0
    status = run_cli("status", str(lab.inventory), "--state", str(lab.state))
    assert status.exit_code == 0, status.stdout  # at the clock it was written with

    monkeypatch.setenv("THREETWOONE_NOW", str(T0))
    status = run_cli("status", str(lab.inventory), "--state", str(lab.state))
    assert status.exit_code == 1, status.stdout
    code, report = audit_at(lab, monkeypatch, T0, "--verify", "changed")
    ds = report["datasets"][0]
    assert code == 1 and ds["status"] == "fail", ds
    for location in ("nas", "tape", "remote"):
        copy = copy_by_location(report, "ds", location)
        assert copy["state"] == "intact" and copy["last_full_verification"] is None, copy
    assert ds["counts"]["copies"] == 0
    for location in ("nas", "tape", "remote"):
        assert (f"copy {location}:ds not counted: never fully verified, policy max_age 90d"
                in ds["warnings"]), ds["warnings"]
        assert any("later than now" in w and f"{location}:ds" in w for w in ds["warnings"])


def test_a_last_audit_dated_after_now_plans_a_whole_intervals_share() -> None:
    """Tonight's share is the bytes times the time since the last audit over
    the interval: a last audit dated after now (0 elapsed) must not plan
    nothing, but a whole interval's share, as when the time is not known."""
    plan = VerifyPlan(interval=30 * DAY)
    ahead = NightlyPlanner(plan, T0, AHEAD, total_bytes=3000)
    unknown = NightlyPlanner(plan, T0, None, total_bytes=3000)
    assert ahead.share == unknown.share == 3000
    assert [ahead.take(1000, T0 - DAY) for _ in range(4)] == [True, True, True, None]
