"""Offline media: a disk in a drawer (``offline: true``, ``offline_max_age``)
keeps its last fully verified state while that is recent enough; older, or
never fully verified, it is unreachable like any absent disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Lab, copy_by_location, dataset_of, run_cli
from threetwoone.reports.common import iso_time

DAY = 86400.0
T0 = 1_800_000_000.0
FILES = {"run/a.fq": b"ACGT" * 300, "run/b.fq": b"TTGA" * 300}


def at(monkeypatch: pytest.MonkeyPatch, when: float) -> None:
    monkeypatch.setenv("THREETWOONE_NOW", str(when))


def drawer_lab(lab: Lab, **tape: object) -> Path:
    _nas, tape_copy, _remote = lab.three_copies(FILES)
    lab.locations["tape"].update({"offline": True, "offline_max_age": "90d", **tape})
    return tape_copy.parent  # the location's root: the disk


def unplug(root: Path) -> None:
    root.rename(root.with_name("tape-in-the-drawer"))


def test_a_disk_in_the_drawer_is_remembered_until_offline_max_age(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    root = drawer_lab(lab)
    at(monkeypatch, T0)
    assert lab.audit_json()[0] == 0
    unplug(root)
    at(monkeypatch, T0 + 10 * DAY)
    code, report = lab.audit_json()
    tape = copy_by_location(report, "ds", "tape")
    assert code == 0, tape
    assert (tape["state"], tape["verification"], tape["counted"]) == (
        "intact", "remembered", True)
    assert tape["last_full_verification"] == iso_time(T0)
    assert f"remembered as intact from {iso_time(T0)} until {iso_time(T0 + 90 * DAY)}" \
        in tape["detail"]
    assert tape["next_step"] == (f"plug the disk in (mount {root}) and audit before "
                                 f"{iso_time(T0 + 90 * DAY)}, when its remembered state "
                                 "expires")
    # Expected to be absent: the location is offline, not an unreachable problem.
    [location] = [loc for loc in report["locations"] if loc["name"] == "tape"]
    assert (location["state"], location["next_step"]) == ("offline", None)
    table = lab.audit().stdout
    assert "  copy tape:ds: intact - offline:" in table and "    next: plug the disk" in table
    assert lab.audit("-q").stdout == ""  # nothing to do yet: cron stays quiet
    at(monkeypatch, T0 + 91 * DAY)
    code, report = lab.audit_json()
    tape = copy_by_location(report, "ds", "tape")
    assert code == 3 and tape["state"] == "unreachable"
    assert "older than offline_max_age 90d" in tape["detail"]
    [location] = [loc for loc in report["locations"] if loc["name"] == "tape"]
    assert location["state"] == "unreachable" and "mount the disk" in location["next_step"]
    assert dataset_of(report, "ds")["status"] == "unknown"


def test_without_offline_max_age_an_absent_disk_is_unreachable(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    root = drawer_lab(lab)
    del lab.locations["tape"]["offline_max_age"]
    at(monkeypatch, T0)
    assert lab.audit_json()[0] == 0
    unplug(root)
    code, report = lab.audit_json()
    assert code == 3 and copy_by_location(report, "ds", "tape")["state"] == "unreachable"


def test_a_corrupt_disk_in_the_drawer_stays_corrupt(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    root = drawer_lab(lab)
    at(monkeypatch, T0)
    assert lab.audit_json()[0] == 0
    (root / "ds" / "run" / "a.fq").write_bytes(b"ACGA" * 300)
    at(monkeypatch, T0 + DAY)
    assert lab.audit_json()[0] == 1
    unplug(root)
    at(monkeypatch, T0 + 2 * DAY)
    code, report = lab.audit_json()
    tape = copy_by_location(report, "ds", "tape")
    assert code == 1 and (tape["state"], tape["verification"]) == ("corrupt", "remembered")


def test_never_audited_offline_disk_is_unreachable(lab: Lab) -> None:
    root = drawer_lab(lab)
    unplug(root)
    code, report = lab.audit_json()
    assert code == 3 and copy_by_location(report, "ds", "tape")["state"] == "unreachable"


@pytest.mark.parametrize(("change", "message"), [
    ({"offline": False}, "locations.tape.offline_max_age: needs offline: true"),
    ({"offline_max_age": "soon"}, "locations.tape.offline_max_age: must be a duration"),
])
def test_offline_max_age_is_validated(lab: Lab, change: dict[str, object],
                                      message: str) -> None:
    drawer_lab(lab, **change)
    result = run_cli("validate", str(lab.write()))
    assert result.exit_code == 4 and message in result.stderr


def test_offline_max_age_needs_a_local_location(lab: Lab) -> None:
    drawer_lab(lab)
    lab.locations["tape"] = {"kind": "sftp", "host": "tapehost", "root": "/t",
                             "media": "tape", "site": "site-a", "offline": True,
                             "offline_max_age": "90d"}
    result = run_cli("validate", str(lab.write()))
    assert result.exit_code == 4
    assert "locations.tape.offline_max_age: only a local location" in result.stderr


def test_an_absent_offline_disk_nothing_was_remembered_from_is_unreachable(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    # A disk in the drawer that only coverage reads: no copy on it kept a
    # remembered state, so its absence is a problem, not "offline".
    drawer_lab(lab)
    lab.locations["shelf"] = {"kind": "local", "root": str(lab.tmp / "storage" / "shelf"),
                              "media": "removable", "site": "site-a", "offline": True,
                              "offline_max_age": "90d"}
    lab.top["coverage"] = [{"location": "shelf", "path": "runs"}]
    at(monkeypatch, T0)
    code, report = lab.audit_json()
    assert code == 3
    [location] = [loc for loc in report["locations"] if loc["name"] == "shelf"]
    assert location["state"] == "unreachable" and "mount the disk" in location["next_step"]
