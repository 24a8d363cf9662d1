"""``status`` and ``history`` with ``--format json`` (validated against their
shipped schemas), and ``status``'s exit code for overdue fixity and max_age."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from conftest import Lab, run_cli
from threetwoone.reports.json import schema

DAY = 86400.0
T0 = 1_800_000_000.0
FILES = {f"run/f{i}.fq": b"ACGT" * (100 + i) for i in range(6)}


def at(monkeypatch: pytest.MonkeyPatch, when: float) -> None:
    monkeypatch.setenv("THREETWOONE_NOW", str(when))


def status_json(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("status", *args, "--state", str(lab.state), "--format", "json")
    doc: dict[str, Any] = json.loads(result.stdout)
    jsonschema.Draft202012Validator(
        schema("status"), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(doc)
    assert doc["exit_code"] == result.exit_code
    return result.exit_code, doc


def test_status_exit_code_follows_the_fixity_interval(lab: Lab,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies(FILES)
    at(monkeypatch, T0)
    assert lab.audit().exit_code == 0
    code, doc = status_json(lab)
    assert code == 0
    assert [c["copy"] for c in doc["copies"]] == ["ds/nas/ds", "ds/remote/ds", "ds/tape/ds"]
    assert all(c["files"] == 6 and c["overdue_files"] == 0 and c["state"] == "intact"
               for c in doc["copies"])
    assert doc["copies"][0]["last_audit"] == "2027-01-15T08:00:00Z"
    at(monkeypatch, T0 + 29.5 * DAY)
    code, doc = status_json(lab)
    assert code == 0 and all(c["due_within_24h"] == 6 for c in doc["copies"])
    at(monkeypatch, T0 + 31 * DAY)
    code, doc = status_json(lab)
    assert code == 1 and all(c["overdue_files"] == 6 and c["overdue"] for c in doc["copies"])
    assert run_cli("status", "--state", str(lab.state), "--fixity-interval",
                   "60d").exit_code == 0
    # The nightly audit re-reads what is due: nothing overdue any more.
    assert lab.audit().exit_code == 0
    assert status_json(lab)[0] == 0


def test_a_file_the_copy_never_verified_is_overdue(lab: Lab,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _nas, tape, _remote = lab.three_copies(FILES)
    at(monkeypatch, T0)
    (tape / "run" / "f0.fq").unlink()
    assert lab.audit().exit_code == 1
    code, doc = status_json(lab)
    tape_row = next(c for c in doc["copies"] if c["copy"] == "ds/tape/ds")
    assert code == 1 and tape_row["never_verified_files"] == 1 and tape_row["overdue_files"] == 1
    assert tape_row["state"] == "incomplete"


def test_status_exit_code_follows_max_age(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies(FILES, policy="fixity-90d")
    at(monkeypatch, T0)
    assert lab.audit().exit_code == 0
    at(monkeypatch, T0 + 91 * DAY)
    # A year-long fixity interval finds nothing due; the policy's 90 days do.
    code, doc = status_json(lab, "--fixity-interval", "365d")
    assert code == 1
    assert all(c["beyond_max_age"] and c["overdue_files"] == 0 and c["policy"] == "fixity-90d"
               and c["max_age"] == "90d" for c in doc["copies"])
    table = run_cli("status", "--state", str(lab.state), "--fixity-interval", "365d")
    assert table.exit_code == 1
    assert "ds/tape/ds: oldest full verification 2027-01-15 08:00 UTC (91d ago) is beyond " \
           "policy fixity-90d's max_age 90d" in table.stdout
    at(monkeypatch, T0 + 89 * DAY)
    assert status_json(lab, "--fixity-interval", "365d")[0] == 0


def test_status_with_inventory_lists_copies_never_audited(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies(FILES, name="old")
    at(monkeypatch, T0)
    assert lab.audit().exit_code == 0
    lab.three_copies(FILES, name="new")  # added to the inventory, not audited yet
    lab.write()
    code, doc = status_json(lab, str(lab.inventory))
    assert code == 1
    never = [c["copy"] for c in doc["copies"] if not c["audited"]]
    assert never == ["new/nas/new", "new/tape/new", "new/remote/new"]
    assert status_json(lab)[0] == 0  # without the inventory, the catalog alone: all fine


def test_history_json(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit().exit_code == 0
    (tape / "run" / "f1.fq").write_bytes(b"rot")
    assert lab.audit().exit_code == 1
    result = run_cli("history", "ds", "--state", str(lab.state), "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    jsonschema.Draft202012Validator(
        schema("history"), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(doc)
    assert [v["status"] for v in doc["verdicts"]] == ["fail", "pass"]  # newest first
    assert doc["verdicts"][0]["copies"]["tape:ds"] == "corrupt"
    assert doc["reference"]["source"] == "primary"
    empty = run_cli("history", "--state", str(lab.tmp / "other.sqlite3"), "--format", "json")
    assert json.loads(empty.stdout) == {"history_version": 1, "reference": None,
                                        "verdicts": []}
