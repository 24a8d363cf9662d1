"""Outdated copies: after an intentional change and ``accept``, copies not yet
re-synced hold the earlier content.  They are ``outdated`` -- not counted, not
breaking ``corrupt: 0``, with "re-sync from the primary" as the next step -- and
only while every differing file matches an earlier reference."""

from __future__ import annotations

import shutil

from conftest import Lab, copy_by_location, dataset_of, run_cli

FILES = {"a.fastq": b"ACGT" * 500, "b.fastq": b"TTGA" * 500, "notes.txt": b"v1\n"}


def accept(lab: Lab) -> None:
    result = run_cli("accept", str(lab.inventory), "ds", "--state", str(lab.state))
    assert result.exit_code == 0, result.stderr


def test_copies_behind_an_accepted_change_are_outdated_not_corrupt(lab: Lab) -> None:
    nas, tape, remote = lab.three_copies(FILES)
    assert lab.audit().exit_code == 0
    (nas / "notes.txt").write_bytes(b"v2, reprocessed\n")
    code, report = lab.audit_json()
    assert code == 1 and copy_by_location(report, "ds", "nas")["state"] == "corrupt"
    accept(lab)
    code, report = lab.audit_json()
    ds = dataset_of(report, "ds")
    for location in ("tape", "remote"):
        copy = copy_by_location(report, "ds", location)
        assert copy["state"] == "outdated" and not copy["counted"]
        assert copy["files"]["outdated"] == 1 and copy["files"]["corrupt"] == 0
        assert copy["problems"][0]["problem"] == "outdated"
        assert copy["next_step"] == ("re-sync it from nas:ds: 1 file still holds the "
                                     "content from before the reference was replaced "
                                     "(accept)")
    assert code == 1 and ds["status"] == "fail"  # 1 counted copy: the policy is not met
    assert [v["rule"] for v in ds["violations"]] == ["copies", "media", "offsite"]
    assert not any("agree with each other" in w for w in ds["warnings"])
    # Re-synced from the primary: intact again, the dataset passes.
    for folder in (tape, remote):
        shutil.copy(nas / "notes.txt", folder / "notes.txt")
    code, report = lab.audit_json()
    assert code == 0 and dataset_of(report, "ds")["status"] == "pass"


def test_one_file_that_matches_no_earlier_reference_keeps_it_corrupt(lab: Lab) -> None:
    nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit().exit_code == 0
    (nas / "notes.txt").write_bytes(b"v2\n")
    accept(lab)
    (tape / "a.fastq").write_bytes(b"ACGA" * 500)  # rot, as well as the old notes.txt
    code, report = lab.audit_json()
    tape_copy = copy_by_location(report, "ds", "tape")
    assert tape_copy["state"] == "corrupt" and tape_copy["files"]["corrupt"] == 2
    assert copy_by_location(report, "ds", "remote")["state"] == "outdated"
    assert code == 1
    assert "corrupt" in [v["rule"] for v in dataset_of(report, "ds")["violations"]]


def test_content_never_in_any_reference_is_corrupt(lab: Lab) -> None:
    nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit().exit_code == 0
    (nas / "notes.txt").write_bytes(b"v2\n")
    accept(lab)
    (tape / "notes.txt").write_bytes(b"v9, neither old nor new\n")
    code, report = lab.audit_json()
    assert copy_by_location(report, "ds", "tape")["state"] == "corrupt" and code == 1
