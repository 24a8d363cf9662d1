"""Next steps in words: every copy that is not intact and every violation says
what to do, in the JSON (``next_step``), the table, Markdown, JUnit and HTML; the
commands they give work."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from conftest import (
    Lab,
    copy_by_location,
    dataset_of,
    run_cli,
    run_unprivileged,
    write_tree,
)
from reportlab import FILES, ODD, report_args, report_paths, run
from threetwoone.pathnames import display


def every_step(report: dict[str, Any]) -> list[str]:
    steps = []
    for dataset in report["datasets"]:
        for violation in dataset["violations"]:
            assert violation["next_step"], (dataset["name"], violation)
            steps.append(violation["next_step"])
        for copy in dataset["copies"]:
            if copy["state"] == "intact":
                assert copy["next_step"] is None
            else:
                assert copy["next_step"], (dataset["name"], copy)
                steps.append(copy["next_step"])
    return steps


def test_every_problem_has_a_next_step_in_every_format(lab: Lab, tmp_path: Path) -> None:
    paths = report_paths(tmp_path, "json", "markdown", "junit", "html")
    result = run(lab, "mixed", *report_args(paths))
    report = json.loads(paths["json"].read_text())
    steps = every_step(report)
    assert len(steps) == 8  # bad: copies, media, corrupt + 2 copies; odd: offsite/sites + 1
    bad = dataset_of(report, "bad")
    assert copy_by_location(report, "bad", "tape")["next_step"] == \
        "re-sync it from nas:bad (1 file corrupt)"
    gone = next(c for c in bad["copies"] if c["path"] == "bad-gone")
    assert gone["next_step"] == ("the folder bad-gone is not on remote: re-sync it from "
                                 "nas:bad, or correct the copy's path in the inventory")
    # An unreachable location says what to do once; its copies point to it.
    assert copy_by_location(report, ODD, "usb")["next_step"] == "see location usb"
    usb = next(loc for loc in report["locations"] if loc["name"] == "usb")
    assert usb["next_step"] == (f"mount the disk or share at {lab.tmp}/storage/usb (or "
                                "correct the location's root), then audit again")
    assert f"next: {usb['next_step']}" in result.stdout
    media = next(v for v in bad["violations"] if v["rule"] == "media")
    assert media["next_step"] == ("put a copy on another kind of media than disk: repair "
                                  "tape:bad, or add one on usb")
    for step in steps:  # the table prints them all, the other formats escape them
        assert f"next: {step}" in result.stdout
    assert paths["junit"].read_text().count("next: ") == len(steps)
    assert paths["markdown"].read_text().count("  - next: ") == len(steps)
    assert paths["html"].read_text().count('<span class="next">next: ') == len(steps)
    assert display(ODD) in result.stdout


def test_an_edited_primary_suggests_accept_and_the_command_works(lab: Lab) -> None:
    nas, _tape, _remote = lab.three_copies(FILES)
    assert lab.audit().exit_code == 0
    (nas / "README.txt").write_bytes(b"reprocessed on purpose\n")
    code, report = lab.audit_json()
    assert code == 1
    step = copy_by_location(report, "ds", "nas")["next_step"]
    command = (f"threetwoone accept {lab.inventory} ds --state {lab.state}")
    assert step.startswith(f"if the primary was changed on purpose, run `{command}`: it "
                           "reads the primary in full and records its current content")
    assert step.endswith("if not, restore the 1 file from the intact copy tape:ds")
    argv = shlex.split(command)
    assert argv[0] == "threetwoone"
    accepted = run_cli(*argv[1:])
    assert accepted.exit_code == 0, accepted.stderr
    assert "new reference accepted from nas:ds" in accepted.stdout


def test_files_added_to_the_primary_suggest_accept(lab: Lab) -> None:
    nas, _tape, _remote = lab.three_copies(FILES)
    assert lab.audit().exit_code == 0
    write_tree(nas, {"new.fastq": b"ACGT"})
    code, report = lab.audit_json()
    assert code == 0
    assert any(w.startswith("if the 1 file not in the reference were added to the primary "
                            f"on purpose, `threetwoone accept {lab.inventory} ds --state")
               for w in dataset_of(report, "ds")["warnings"])


def test_a_primary_that_cannot_give_a_reference(lab: Lab) -> None:
    lab.three_copies(FILES)
    shutil.rmtree(lab.tmp / "storage" / "nas" / "ds")
    code, report = lab.audit_json()
    assert code in (1, 3)
    assert copy_by_location(report, "ds", "nas")["next_step"].startswith(
        "the folder ds is not on nas: no intact copy is left to copy from")
    assert copy_by_location(report, "ds", "tape")["next_step"] == (
        "nothing to compare with yet: fix the primary copy first (see its detail)")


def test_no_location_qualifies(lab: Lab) -> None:
    nas = lab.location("nas", "disk", "a")
    usb = lab.location("usb", "disk", "a")
    for root in (nas, usb):
        write_tree(root / "ds", FILES)
    lab.dataset("ds", [{"location": "nas", "path": "ds"}, {"location": "usb", "path": "ds"}])
    code, report = lab.audit_json()
    assert code == 1
    steps = {v["rule"]: v["next_step"] for v in dataset_of(report, "ds")["violations"]}
    assert steps["offsite"] == ("add a copy at a site other than a: no location in the "
                                "inventory qualifies yet, add one")
    assert steps["copies"] == ("get 1 more intact copy: no location in the inventory "
                               "qualifies yet, add one")


def test_no_counted_copy_says_which_copies_to_get(open_lab: Lab) -> None:
    """A primary the auditor cannot read leaves no copy counted: each rule's step
    says what to get, never "another kind of media than -"."""
    lab = open_lab
    nas, _tape, _remote = lab.three_copies(FILES)
    policy = lab.tmp / "spread.yaml"
    policy.write_text("name: spread\nrequire: {copies: 3, media: 2, offsite: 1, sites: 2, "
                      "locations: 3}\n")
    (nas / "sub").chmod(0)  # as nobody the primary cannot be read: no reference
    code, report = run_unprivileged(lab, "--policy", str(policy))
    assert code in (1, 3)
    ds = dataset_of(report, "ds")
    assert not any(copy["counted"] for copy in ds["copies"])
    steps = {v["rule"]: v["next_step"] for v in ds["violations"]}
    repair = ": repair nas:ds, tape:ds, remote:ds"
    assert steps == {
        "copies": "get 3 intact copies" + repair,
        "media": "get intact copies on 2 kinds of media" + repair,
        "offsite": "get 1 intact copy at a site other than site-a (the primary's): "
                   "repair remote:ds",
        "sites": "get intact copies at 2 sites" + repair,
        "locations": "get intact copies on 3 locations" + repair,
    }
    assert not any(" than -" in step for step in steps.values())
