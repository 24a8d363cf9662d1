"""Collections through the CLI: datasets declared by pattern, their names and
copies, ``-d`` globs, ``threetwoone datasets``, ``dataset-gone`` until
``forget``, and the bad inputs (a folder claimed twice, templates leaving the
location, a glob matching nothing)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from conftest import Lab, dataset_of, run_cli, write_tree
from facilitylab import FILES, NGI, audit_json, write
from facilitylab import facility as ngi_facility


def facility(lab: Lab, projects: tuple[str, ...] = ("P1", "P2", "P3")) -> dict[str, Path]:
    return ngi_facility(lab, projects)


def audited_facility(lab: Lab) -> dict[str, Path]:
    """The facility with collection ``ngi`` declared, audited once: every dataset
    passes, so the catalog knows them all before the test changes something."""
    roots = facility(lab)
    write(lab, collections={"ngi": NGI})
    assert audit_json(lab)[0] == 0
    return roots


def datasets_json(lab: Lab) -> dict[str, Any]:
    result = run_cli("datasets", str(lab.inventory), "--state", str(lab.state),
                     "--format", "json")
    assert result.exit_code in (0, 3), result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_collection_datasets_named_and_copied_from_templates(lab: Lab) -> None:
    facility(lab)
    write(lab, collections={"ngi": NGI})
    listed = datasets_json(lab)
    assert [d["name"] for d in listed["datasets"]] == ["ngi/P1", "ngi/P2", "ngi/P3"]
    p2 = listed["datasets"][1]
    assert p2["collection"] == "ngi" and p2["state"] == "found"
    assert [(c["location"], c["path"], c["primary"]) for c in p2["copies"]] == [
        ("nas", "ngi/P2", True), ("usb", "ngi/P2", False), ("kth", "projects/ngi/P2", False)]
    code, report = audit_json(lab)
    assert code == 0
    assert [d["name"] for d in report["datasets"]] == ["ngi/P1", "ngi/P2", "ngi/P3"]
    assert all(d["status"] == "pass" and d["counts"]["copies"] == 3
               for d in report["datasets"])
    assert report["collections"] == [{"name": "ngi", "location": "nas", "glob": "ngi/P*",
                                      "datasets": 3, "gone": 0, "state": "listed",
                                      "detail": None}]


def test_corrupt_copy_of_a_collection_dataset_fails(lab: Lab) -> None:
    roots = audited_facility(lab)
    (roots["kth"] / "projects" / "ngi" / "P2" / "a.fastq.gz").write_bytes(b"READS " * 50)
    code, report = audit_json(lab)
    assert code == 1
    p2 = dataset_of(report, "ngi/P2")
    assert p2["status"] == "fail"
    assert [c["state"] for c in p2["copies"]] == ["intact", "intact", "corrupt"]
    assert dataset_of(report, "ngi/P1")["status"] == "pass"


def test_glob_below_wildcards_names_by_the_match_without_literal_folders(lab: Lab) -> None:
    nas = lab.location("nas", "disk", "a")
    backup = lab.location("backup", "tape", "b")
    for run in ("R7", "R8"):
        write_tree(nas / "runs" / run / "raw", FILES)
        write_tree(nas / "runs" / run / "processed", {"x": b"x"})
        write_tree(backup / "raw" / "runs" / run / "raw", FILES)
    write(lab, collections={"seq": {
        "location": "nas", "glob": "runs/*/raw", "policy": "ndsa-storage-1",
        "copies": [{"location": "backup", "path": "raw/{path}"}]}})
    listed = datasets_json(lab)
    assert [d["name"] for d in listed["datasets"]] == ["seq/R7/raw", "seq/R8/raw"]
    assert listed["datasets"][0]["copies"][1]["path"] == "raw/runs/R7/raw"
    assert listed["datasets"][0]["policy"] == "ndsa-storage-1"


def test_hidden_folders_ignored_folders_and_symlinks_are_not_datasets(lab: Lab) -> None:
    roots = facility(lab, ("P1", "P2"))
    write_tree(roots["nas"] / "ngi" / ".P-snapshot", FILES)
    write_tree(roots["nas"] / "ngi" / "P9-scratch", FILES)
    os.symlink(roots["nas"] / "ngi" / "P1", roots["nas"] / "ngi" / "P1-link")
    write(lab, collections={"ngi": {**NGI, "ignore": ["*-scratch"]}})
    result = run_cli("datasets", str(lab.inventory), "--state", str(lab.state))
    assert result.exit_code == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()[2:]
             if line.startswith("ngi/")]
    assert names == ["ngi/P1", "ngi/P2"]
    assert "ngi/P1-link on nas is a symlink: not followed, not a dataset" in result.stderr


def test_validate_touches_no_storage(lab: Lab) -> None:
    facility(lab)
    # Nothing listens there: listing it would fail (and `datasets` says so).
    lab.locations["nas"] = {"kind": "sftp", "host": "127.0.0.1", "port": 9, "root": "/",
                            "media": "disk", "site": "uppsala", "timeout": 2}
    write(lab, collections={"ngi": NGI}, coverage=[{"location": "nas", "path": "ngi"}])
    result = run_cli("validate", str(lab.inventory))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "1 collection " in result.stdout and "1 coverage check" in result.stdout
    listed = run_cli("datasets", str(lab.inventory), "--state", str(lab.state))
    assert listed.exit_code == 3
    assert "collection ngi: 0 datasets on nas (ngi/P*); UNREACHABLE" in listed.stdout


def test_glob_matching_nothing_is_a_warning(lab: Lab) -> None:
    facility(lab)
    write(lab, collections={"ngi": {**NGI, "glob": "ngi/X*"}})
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state))
    assert result.exit_code == 0, result.stderr
    assert "collection ngi: glob 'ngi/X*' matches no folder on nas" in result.stderr


def test_dataset_option_takes_names_and_globs(lab: Lab) -> None:
    facility(lab)
    lab.dataset("declared", [{"location": "nas", "path": "other"}])
    write_tree(lab.tmp / "storage" / "nas" / "other", FILES)
    write(lab, datasets=lab.datasets, collections={"ngi": NGI})
    _code, report = audit_json(lab, "-d", "ngi/P[12]")
    assert [d["name"] for d in report["datasets"]] == ["ngi/P1", "ngi/P2"]
    _code, report = audit_json(lab, "-d", "ngi/*", "-d", "declared")
    assert [d["name"] for d in report["datasets"]] == ["declared", "ngi/P1", "ngi/P2",
                                                      "ngi/P3"]
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state), "-d", "ngi/Q*")
    assert result.exit_code == 2
    assert "no dataset matches ngi/Q* (the inventory has: declared, ngi/P1" in result.stderr


def test_gone_dataset_fails_until_forgotten(lab: Lab) -> None:
    roots = audited_facility(lab)
    shutil.rmtree(roots["nas"] / "ngi" / "P2")
    code, report = audit_json(lab)
    assert code == 1
    gone = dataset_of(report, "ngi/P2")
    assert gone["status"] == "fail"
    assert gone["violations"][0]["rule"] == "dataset-gone"
    assert gone["violations"][0]["next_step"] == (
        f"if the dataset was removed on purpose, run `threetwoone forget {lab.inventory} "
        f"ngi/P2 --state {lab.state}`")
    # Its other copies are still audited: they are all that is left.
    assert [c["state"] for c in gone["copies"]] == ["missing", "intact", "intact"]
    assert report["collections"][0]["gone"] == 1
    assert datasets_json(lab)["datasets"][1]["state"] == "gone"
    # Still failing the next night: it is remembered, not just noticed once.
    assert audit_json(lab)[0] == 1
    refused = run_cli("forget", str(lab.inventory), "ngi/P1", "--state", str(lab.state))
    assert refused.exit_code == 2 and "still in the inventory" in refused.stderr
    forgot = run_cli("forget", str(lab.inventory), "ngi/P2", "--state", str(lab.state))
    assert forgot.exit_code == 0, forgot.stderr
    assert "ngi/P2: forgotten" in forgot.stdout
    code, report = audit_json(lab)
    assert code == 0
    assert [d["name"] for d in report["datasets"]] == ["ngi/P1", "ngi/P3"]
    # History stays.
    history = run_cli("history", "ngi/P2", "--state", str(lab.state))
    assert "FAIL" in history.stdout


def test_a_folder_that_comes_back_after_forget_starts_afresh(lab: Lab) -> None:
    roots = audited_facility(lab)
    shutil.rmtree(roots["nas"] / "ngi" / "P3")
    assert run_cli("forget", str(lab.inventory), "ngi/*", "--state",
                   str(lab.state)).exit_code == 0
    write_tree(roots["nas"] / "ngi" / "P3", FILES)
    code, report = audit_json(lab)
    assert code == 0
    assert any("reference recorded from the primary copy" in w
               for w in dataset_of(report, "ngi/P3")["warnings"])


def test_unreachable_collection_location_is_undetermined_never_empty(lab: Lab) -> None:
    facility(lab)
    write(lab, collections={"ngi": NGI})
    assert audit_json(lab)[0] == 0
    os.rename(lab.tmp / "storage" / "nas", lab.tmp / "storage" / "nas-unmounted")
    code, report = audit_json(lab)
    assert code == 3
    assert report["collections"][0]["state"] == "unreachable"
    # The datasets found before are audited: their backups are checked.
    assert [d["name"] for d in report["datasets"]] == ["ngi/P1", "ngi/P2", "ngi/P3"]
    for dataset in report["datasets"]:
        assert dataset["status"] == "unknown"
        assert [c["state"] for c in dataset["copies"]] == ["unreachable", "intact", "intact"]
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.tmp / "new.sqlite3"))
    assert result.exit_code == 3
    assert "collection ngi (nas): UNREACHABLE" in result.stdout
    refused = run_cli("forget", str(lab.inventory), "ngi/P1", "--state", str(lab.state))
    assert refused.exit_code == 3 and "cannot confirm it has gone" in refused.stderr


def test_narrowing_a_glob_drops_datasets_without_failing_them(lab: Lab) -> None:
    roots = audited_facility(lab)
    write(lab, collections={"ngi": {**NGI, "ignore": ["P3"]}})
    shutil.rmtree(roots["nas"] / "ngi" / "P3")
    code, report = audit_json(lab)
    assert code == 0
    assert [d["name"] for d in report["datasets"]] == ["ngi/P1", "ngi/P2"]


def test_two_collections_claiming_one_folder_exit_4_naming_both(lab: Lab) -> None:
    facility(lab)
    write(lab, collections={"ngi": NGI, "all": {**NGI, "glob": "ngi/*"}})
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state))
    assert result.exit_code == 4
    assert "nas:ngi/P1 is claimed by dataset all/P1 (collection all) and by dataset ngi/P1" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_collection_and_declared_dataset_claiming_one_folder_exit_4(lab: Lab) -> None:
    facility(lab)
    lab.dataset("P2-by-hand", [{"location": "nas", "path": "ngi/P2", "primary": True},
                               {"location": "kth", "path": "elsewhere"}])
    write(lab, datasets=lab.datasets, collections={"ngi": NGI})
    result = run_cli("datasets", str(lab.inventory), "--state", str(lab.state))
    assert result.exit_code == 4
    assert "claimed by dataset ngi/P2 (collection ngi) and by dataset P2-by-hand" \
        in result.stderr
    # The fix the message suggests works.
    write(lab, datasets=lab.datasets, collections={"ngi": {**NGI, "ignore": ["P2"]}})
    assert run_cli("datasets", str(lab.inventory), "--state",
                   str(lab.state)).exit_code == 0


def test_template_giving_every_dataset_one_folder_exit_4(lab: Lab) -> None:
    nas = lab.location("nas", "disk", "a")
    lab.location("backup", "tape", "b")
    for run in ("R7", "R8"):
        write_tree(nas / "runs" / run / "raw", FILES)
    write(lab, collections={"seq": {"location": "nas", "glob": "runs/*/raw",
                                    "copies": [{"location": "backup", "path": "x/{name}"}]}})
    result = run_cli("audit", str(lab.inventory), "--state", str(lab.state))
    assert result.exit_code == 4
    assert "backup:x/raw is claimed by dataset seq/R8/raw" in result.stderr
    assert "and by dataset seq/R7/raw" in result.stderr


def test_invalid_collections_exit_4_with_key_paths(lab: Lab) -> None:
    facility(lab)
    lab.dataset("ngi/P1", [{"location": "nas", "path": "x"}])
    write(lab, datasets=lab.datasets, collections={
        "ngi": {**NGI, "copies": [{"location": "usb", "path": "../{name}"},
                                  {"location": "kth", "path": "fixed"},
                                  {"location": "kth", "path": "{project}"},
                                  {"location": "usb", "path": "x/{name}", "primary": True}]},
        "a/b": NGI,
        "deep": {**NGI, "glob": "ngi/**"},
        "nowhere": {**NGI, "location": "nope"}})
    result = run_cli("validate", str(lab.inventory))
    assert result.exit_code == 4
    err = result.stderr
    assert "collections.ngi.copies[0].path: must not contain '..'" in err
    assert "collections.ngi.copies[1].path: must contain {path} or {name}" in err
    assert "collections.ngi.copies[2].path: unknown placeholder {project}" in err
    assert "collections.ngi.copies[3].primary:" in err
    assert "collections.a/b: a collection name must be text without '/'" in err
    assert "collections.deep.glob: must not contain '**'" in err
    assert "collections.nowhere.location: unknown location 'nope'" in err
    assert "datasets.ngi/P1: dataset name 'ngi/P1' is in the name space of collection" in err
    assert "Traceback" not in err


def test_collection_class_and_policy_checked_like_datasets(lab: Lab) -> None:
    facility(lab)
    write(lab, collections={"ngi": {**NGI, "class": "raw"}})
    result = run_cli("validate", str(lab.inventory))
    assert result.exit_code == 4
    assert "collections.ngi.class: unknown class 'raw'" in result.stderr
    write(lab, policies={"raw": "raw-offsite"}, collections={"ngi": {**NGI, "class": "raw"}})
    _code, report = audit_json(lab)
    assert {d["policy"] for d in report["datasets"]} == {"raw-offsite"}


def test_accept_a_collection_dataset(lab: Lab) -> None:
    roots = audited_facility(lab)
    for root in (roots["nas"] / "ngi", roots["usb"] / "ngi", roots["kth"] / "projects/ngi"):
        (root / "P1" / "new.txt").write_bytes(b"added on purpose")
    result = run_cli("accept", str(lab.inventory), "ngi/P1", "--state", str(lab.state))
    assert result.exit_code == 0, result.stderr
    code, report = audit_json(lab)
    assert code == 0 and dataset_of(report, "ngi/P1")["copies"][2]["files"]["extra"] == 0


def test_the_facility_example(tmp_path: Path) -> None:
    example = tmp_path / "facility"
    shutil.copytree(Path(__file__).parent.parent / "examples" / "facility", example)
    result = run_cli("audit", str(example / "inventory.yaml"), "--state",
                     str(tmp_path / "state.sqlite3"), "--format", "json")
    assert result.exit_code == 1, result.stderr
    report = result.json()
    assert [(d["name"], d["status"]) for d in report["datasets"]] == [
        ("ngi/P12345", "pass"), ("ngi/P12346", "pass"), ("ngi/P12347", "fail"),
        ("ngi/P12348", "fail")]
    assert [(u["location"], u["path"]) for u in report["uncovered"]] == [
        ("lab-nas", "ngi/external-2026-11")]


def test_a_report_never_lands_in_a_copy_a_collection_found(lab: Lab) -> None:
    roots = facility(lab)
    (lab.tmp / "lab.yaml").write_text("name: lab\nrequire: {copies: 3}\n")
    write(lab, collections={"ngi": {**NGI, "policy": "lab.yaml"}})
    for target in (roots["usb"] / "ngi" / "P2" / "report.json", lab.tmp / "lab.yaml"):
        result = run_cli("audit", str(lab.inventory), "--state", str(lab.state),
                         "--report", f"json:{target}")
        assert result.exit_code == 2, (target, result.stderr)
    assert not (roots["usb"] / "ngi" / "P2" / "report.json").exists()
    assert (lab.tmp / "lab.yaml").read_text().startswith("name: lab")


def test_a_dataset_not_seen_while_unreachable_is_dated_by_its_last_sighting(
        lab: Lab, monkeypatch: Any) -> None:
    roots = facility(lab)
    write(lab, collections={"ngi": NGI})
    night = 1_790_000_000
    monkeypatch.setenv("THREETWOONE_NOW", str(night))
    assert audit_json(lab)[0] == 0
    nas = lab.tmp / "storage" / "nas"
    os.rename(nas, lab.tmp / "unmounted")
    monkeypatch.setenv("THREETWOONE_NOW", str(night + 86400))
    assert audit_json(lab)[0] == 3
    os.rename(lab.tmp / "unmounted", nas)
    shutil.rmtree(roots["nas"] / "ngi" / "P2")
    monkeypatch.setenv("THREETWOONE_NOW", str(night + 2 * 86400))
    code, report = audit_json(lab)
    assert code == 1
    # Last audited on the first night: the second never saw it.
    assert "(last audited 2026-09-21T14:13:20Z)" in \
        dataset_of(report, "ngi/P2")["violations"][0]["message"]


#: Project folders a hostile or careless depositor could create on the NAS.
HOSTILE = {b"P2\nP9  PASS": "ngi/P2\\nP9  PASS", b"P3 \x1b[31mred": "ngi/P3 \\x1b[31mred"}


def test_hostile_folder_names_stay_on_one_line_and_non_utf8_is_never_skipped(
        lab: Lab) -> None:
    roots = facility(lab, ("P1",))
    for folder in (*HOSTILE, b"P4\xff"):
        for base in (roots["nas"] / "ngi", roots["usb"] / "ngi",
                     roots["kth"] / "projects" / "ngi"):
            write_tree(os.path.join(os.fsencode(base), folder), FILES)
    write(lab, collections={"ngi": NGI})
    listed = run_cli("datasets", str(lab.inventory), "--state", str(lab.state))
    assert listed.exit_code == 3, listed.stderr
    for name in ("ngi/P1", *HOSTILE.values()):
        assert sum(line.startswith(f"{name}  ") for line in listed.stdout.splitlines()) == 1, \
            listed.stdout
    # A name that is not UTF-8 cannot key a dataset's catalog rows: the
    # collection is incomplete (the run undetermined), the folder named once.
    code, report = audit_json(lab)
    assert code == 3
    assert [(d["name"], d["status"]) for d in report["datasets"]] == [
        ("ngi/P1", "pass"), *((name, "pass") for name in sorted(HOSTILE.values()))]
    [listing] = report["collections"]
    assert listing["state"] == "incomplete"
    assert listing["detail"] == ("could not list ngi/P4\\xff: the name is not valid UTF-8 "
                                 "(rename the folder, or leave it out with the "
                                 "collection's ignore)")
    table = run_cli("audit", str(lab.inventory), "--state", str(lab.state))
    assert table.exit_code == 3 and "Traceback" not in table.stderr
    assert not any(line.startswith(("P9", "[31m")) for line in table.stdout.splitlines())
    # Left out on purpose, it is the operator's decision; coverage still sees it.
    write(lab, collections={"ngi": {**NGI, "ignore": ["P4*"]}},
          coverage=[{"location": "nas", "path": "ngi"}])
    code, report = audit_json(lab)
    assert code == 1 and report["collections"][0]["state"] == "listed"
    assert [u["path"] for u in report["uncovered"]] == ["ngi/P4\\xff"]
