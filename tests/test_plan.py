"""``threetwoone plan``: what to copy where, from the latest audit, through the
CLI on real trees.  The printed rsync commands are run in a real shell and the
next audit must pass: the plan's commands are the oracle of the plan."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import CliResult, Lab, dataset_of, rot_in_place, run_cli, write_tree
from threetwoone.repair.render import schema

PLAN_VALIDATOR = jsonschema.Draft202012Validator(
    schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)

#: The shells the printed commands must work in.
SHELLS = ("sh", "bash")


def plan(lab: Lab, *args: str) -> CliResult:
    return run_cli("plan", str(lab.inventory), "--state", str(lab.state), *args)


def plan_json(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    result = plan(lab, "--format", "json", *args)
    assert result.exit_code in (0, 1), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    PLAN_VALIDATOR.validate(report)
    return result.exit_code, report


def run_commands(commands: list[str], shell: str = "sh") -> None:
    """Run printed commands as a person would: in a real shell, with this
    threetwoone first on PATH (for ``plan-files``)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    for command in commands:
        done = subprocess.run([shell, "-c", command], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, (command, done.stderr)


def site_lab(lab: Lab, files: dict[str | bytes, bytes]) -> tuple[Path, Path]:
    """A primary on disk and a tape copy at site-a; an empty location at site-b."""
    nas, tape = lab.location("nas", "disk", "site-a"), lab.location("tape", "tape", "site-a")
    lab.location("kth", "disk", "site-b", create=False)
    for root in (nas, tape):
        write_tree(root / "ds", files)
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "tape", "path": "ds"}])
    return nas / "ds", tape / "ds"


# -- the route flips between network and courier -------------------------------------

#: A 2-day courier against a 1 bit/s link: the network is faster below
#: 2 * 86400 / 8 = 21600 bytes, the courier above.
COURIER = {"days": 2, "disk_size": "20TB"}
THRESHOLD = 2 * 86400 // 8


@pytest.mark.parametrize(("size", "route"), [(THRESHOLD - 100, "network"),
                                             (THRESHOLD + 100, "courier")])
def test_a_missing_offsite_copy_goes_by_the_faster_route(lab: Lab, size: int,
                                                         route: str) -> None:
    site_lab(lab, {"run.fastq": b"A" * size})
    lab.top["transfer"] = {"links": [{"from": "site-a", "to": "site-b", "bandwidth": "1bit/s"}],
                           "courier": COURIER}
    assert lab.audit().exit_code == 1  # 2 copies, none off-site
    code, report = plan_json(lab)
    ds = dataset_of(report, "ds")
    assert code == 1 and not ds["nothing_to_do"]
    [action] = ds["actions"]
    assert action["kind"] == "new-copy" and action["location"] == "kth"
    assert action["copy"] == "kth:ds" and action["bytes"] == size and action["files"] == 1
    assert action["network_seconds"] == pytest.approx(size * 8, abs=0.1)
    assert action["courier_seconds"] == 2 * 86400 and action["courier_disks"] == 1
    assert action["route"] == route
    assert action["summary"].endswith(f": {route}")
    rules = {u["rule"]: u for u in ds["unmet"]}
    assert set(rules) == {"copies", "offsite"}
    assert [c["location"] for c in rules["offsite"]["candidates"]] == ["kth"]


def test_a_fast_link_keeps_a_big_dataset_on_the_network(lab: Lab) -> None:
    site_lab(lab, {"run.fastq": b"A" * (THRESHOLD + 100)})
    lab.top["transfer"] = {"links": [{"from": "site-a", "to": "site-b",
                                      "bandwidth": "10Gbit/s"}], "courier": COURIER}
    lab.audit()
    result = plan(lab)
    assert result.exit_code == 1
    assert "network 1 s at 10 Gbit/s, courier 2 days with 1 disk: network" in result.stdout
    assert "new copy on kth:ds" in result.stdout


def test_the_new_copy_command_makes_the_dataset_pass(lab: Lab) -> None:
    site_lab(lab, {"a b.txt": b"1" * 100, "it's $HOME.txt": b"2" * 50})
    lab.top["transfer"] = {"links": [{"from": "site-a", "to": "site-b",
                                      "bandwidth": "1Gbit/s"}]}
    lab.audit()
    _code, report = plan_json(lab)
    [action] = dataset_of(report, "ds")["actions"]
    assert action["command"].startswith("rsync -a ")  # a whole tree: no file list
    assert action["courier_seconds"] is None and action["route"] == "network"
    run_commands([action["command"]])
    lab.dataset("ds", [*lab.datasets["ds"]["copies"], {"location": "kth", "path": "ds"}])
    assert lab.audit().exit_code == 0
    assert plan(lab).exit_code == 0


# -- repairs from the right copy -----------------------------------------------------

def four_sites(lab: Lab, files: dict[str | bytes, bytes]) -> dict[str, Path]:
    """nas (primary) and tape at site-a, near at site-b (fast link), far at site-c
    (slow link), every copy holding ``files``."""
    roots = {"nas": lab.location("nas", "disk", "site-a"),
             "tape": lab.location("tape", "tape", "site-a"),
             "near": lab.location("near", "disk", "site-b"),
             "far": lab.location("far", "object", "site-c")}
    for root in roots.values():
        write_tree(root / "ds", files)
    lab.dataset("ds", [{"location": name, "path": "ds", "primary": name == "nas"}
                       for name in roots])
    lab.top["transfer"] = {"links": [
        {"from": "site-a", "to": "site-b", "bandwidth": "10Gbit/s"},
        {"from": "site-a", "to": "site-c", "bandwidth": "100Mbit/s"}]}
    return {name: root / "ds" for name, root in roots.items()}


def test_corrupt_copies_are_repaired_from_the_right_intact_copy(lab: Lab) -> None:
    files: dict[str | bytes, bytes] = {"f.dat": b"f" * 4000, "g.dat": b"g" * 3000,
                                       "h.dat": b"h" * 100}
    copies = four_sites(lab, files)
    assert lab.audit().exit_code == 0
    rot_in_place(copies["tape"] / "f.dat")       # f: the same site's primary has it
    rot_in_place(copies["nas"] / "g.dat")        # g: rotten at site-a on both copies,
    rot_in_place(copies["tape"] / "g.dat", 10)   # so from the faster link (near)
    assert lab.audit("--verify", "full").exit_code == 1
    code, report = plan_json(lab)
    ds = dataset_of(report, "ds")
    assert code == 1 and ds["files_lost"] == 0
    # 4 copies, 3 required: only g has 2 intact copies (near, far).
    assert ds["files_at_risk"] == 1
    actions = {(a["copy"], a["from"]): a for a in ds["actions"]}
    assert set(actions) == {("tape:ds", "nas:ds"), ("tape:ds", "near:ds"),
                            ("nas:ds", "near:ds")}
    assert actions["tape:ds", "nas:ds"]["files"] == 1
    assert actions["tape:ds", "nas:ds"]["bytes"] == 4000
    assert actions["nas:ds", "near:ds"]["bytes"] == 3000
    assert all(a["kind"] == "repair" for a in ds["actions"])
    assert "--ignore-times" in actions["tape:ds", "nas:ds"]["command"]  # bit rot keeps mtime
    assert ds["unmet"] == []
    run_commands([a["command"] for a in ds["actions"]], shell="bash")
    assert lab.audit().exit_code == 0
    for name, data in files.items():
        for root in copies.values():
            assert (root / str(name)).read_bytes() == data


def test_a_missing_copy_is_made_again_whole(lab: Lab) -> None:
    copies = four_sites(lab, {"a": b"a" * 10, "b": b"b" * 20})
    lab.audit()
    shutil.rmtree(copies["far"])
    assert lab.audit().exit_code == 0  # 3 intact copies still pass 3-2-1
    code, report = plan_json(lab)
    [action] = dataset_of(report, "ds")["actions"]
    assert code == 1 and action["copy"] == "far:ds" and action["from"] == "nas:ds"
    assert action["files"] == 2 and action["bytes"] == 30
    assert "--files-from" not in action["command"]
    run_commands([action["command"]])
    lab.audit()
    assert plan(lab).exit_code == 0


# -- lost files ----------------------------------------------------------------------

def test_a_file_lost_everywhere_comes_first_and_loudest(lab: Lab) -> None:
    nas, tape, remote = lab.three_copies({"keep": b"k" * 10, "gone": b"g" * 77})
    assert lab.audit().exit_code == 0
    rot_in_place(nas / "gone")
    (tape / "gone").unlink()
    rot_in_place(remote / "gone", 5)
    code, report = lab.audit_json("--verify", "full")
    ds = dataset_of(report, "ds")
    assert code == 1 and ds["files_lost"] == 1 and ds["files_at_risk"] == 1
    table = lab.audit().stdout
    assert table.index("LOST: 1 file") < table.index("violation")
    code, report = plan_json(lab)
    ds = dataset_of(report, "ds")
    assert code == 1 and ds["files_lost"] == 1 and ds["lost_bytes"] == 77
    assert "no intact copy on any copy reached" in ds["notes"][0]
    # Every copy lacks only the lost file, and no copy can give it.
    assert ds["actions"] == [] and "recover them from the producer" in ds["notes"][0]
    text = plan(lab).stdout
    lines = text.splitlines()
    assert lines[1].startswith("  LOST: 1 file (77 bytes)")
    listed = subprocess.run(
        [sys.executable, "-m", "threetwoone", "plan-files", str(lab.inventory), "--state",
         str(lab.state), "-d", "ds", "--lost"], capture_output=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout == b"gone\0"


# -- nothing to do -------------------------------------------------------------------

def test_a_passing_dataset_has_nothing_to_do(lab: Lab) -> None:
    lab.three_copies({"a": b"1", "b": b"2"})
    assert lab.audit().exit_code == 0
    code, report = plan_json(lab)
    ds = dataset_of(report, "ds")
    assert code == 0 and ds["nothing_to_do"] and ds["actions"] == []
    assert ds["files_at_risk"] == 0 and ds["files_lost"] == 0 and ds["status"] == "pass"
    assert "nothing to do" in plan(lab).stdout


# -- odd names through the printed commands -----------------------------------------

ODD: dict[str | bytes, bytes] = {
    "with space.txt": b"1", "it's.txt": b"2", 'say "hi".txt': b"3", "$HOME.txt": b"4",
    "back\\slash.txt": b"5", "star*.txt": b"6", "-dash.txt": b"7", "sub dir/x;y&z.txt": b"8",
    "new\nline.txt": b"9", "tab\there.txt": b"10",
}


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_odd_names_survive_the_printed_commands(lab: Lab, shell: str) -> None:
    nas, tape, remote = lab.three_copies(ODD)
    lab.audit()
    for name in ODD:
        if name != "with space.txt":
            os.unlink(os.path.join(os.fsencode(tape), os.fsencode(name)))
            os.unlink(os.path.join(os.fsencode(remote), os.fsencode(name)))
    lab.audit()
    code, report = plan_json(lab)
    actions = dataset_of(report, "ds")["actions"]
    assert code == 1 and {a["copy"] for a in actions} == {"tape:ds", "remote:ds"}
    # A newline in a name: listed by plan-files, never inline.
    assert all("threetwoone plan-files" in a["command"] for a in actions)
    run_commands([a["command"] for a in actions], shell)
    assert lab.audit().exit_code == 0
    for root in (tape, remote):
        assert sorted(os.listdir(root)) == sorted(os.listdir(nas))


def test_a_few_printable_names_are_listed_inline(lab: Lab) -> None:
    _nas, tape, _remote = lab.three_copies({"a b": b"1", "it's $x": b"2", "ok": b"3"})
    lab.audit()
    (tape / "a b").unlink()
    (tape / "it's $x").unlink()
    lab.audit()
    _code, report = plan_json(lab)
    [action] = dataset_of(report, "ds")["actions"]
    assert action["command"].startswith("printf '%s\\0' 'a b' 'it'\"'\"'s $x' | rsync -a")
    run_commands([action["command"]], "bash")
    assert (tape / "it's $x").read_bytes() == b"2"
    assert lab.audit().exit_code == 0


# -- estimates from measured throughput ---------------------------------------------

def test_without_a_link_the_measured_throughput_is_used_and_said(lab: Lab) -> None:
    site_lab(lab, {"big.bin": os.urandom(3 << 20)})
    lab.audit()
    with sqlite3.connect(lab.state) as db:
        rows = dict(db.execute("SELECT location, bytes_read * 1.0 / seconds "
                               "FROM location_throughput"))
    assert set(rows) == {"nas", "tape"}
    _code, report = plan_json(lab)
    [action] = dataset_of(report, "ds")["actions"]
    assert action["from"] in ("nas:ds", "tape:ds")
    source = action["from"].split(":")[0]
    assert action["network_seconds"] == pytest.approx(action["bytes"] / rows[source],
                                                      rel=0.01, abs=0.1)
    assert f"measured reading {source}" in action["network_basis"]
    assert "no link declared between sites site-a and site-b" in action["network_basis"]
    assert action["courier_seconds"] is None  # no courier declared


# -- bad input and missing audits ----------------------------------------------------

@pytest.mark.parametrize(("transfer", "message"), [
    ({"links": [{"from": "site-a", "to": "site-b", "bandwidth": "0Mbit/s"}]}, "is zero"),
    ({"links": [{"from": "site-a", "to": "site-b", "bandwidth": "-1Gbit/s"}]}, "negative"),
    ({"links": [{"from": "site-a", "to": "mars", "bandwidth": "1Gbit/s"}]},
     "unknown site 'mars'"),
    ({"links": [{"from": "Site A", "to": "site-a", "bandwidth": "1Gbit/s"}]}, "to itself"),
    ({"links": [{"from": "site-a", "to": "site-b", "bandwidth": 100}]}, "with its unit"),
    ({"courier": {"days": 2, "disk_size": "big"}}, "not a size"),
    ({"courier": {"days": -1, "disk_size": "20TB"}}, "more than 0"),
])
def test_a_bad_transfer_section_is_an_invalid_inventory(lab: Lab, transfer: dict[str, Any],
                                                        message: str) -> None:
    site_lab(lab, {"a": b"1"})
    lab.top["transfer"] = transfer
    lab.write()
    for result in (plan(lab), run_cli("validate", str(lab.inventory))):
        assert result.exit_code == 4
        assert message in result.stderr and "inventory.yaml:" in result.stderr
        assert "Traceback" not in result.stderr


def test_no_audit_in_the_catalog_is_exit_5_naming_the_dataset(lab: Lab) -> None:
    site_lab(lab, {"a": b"1"})
    lab.write()
    result = plan(lab)
    assert result.exit_code == 5 and not lab.state.exists()  # a plan creates no catalog
    assert "no audit in the catalog for ds" in result.stderr
    assert f"threetwoone audit {lab.inventory} --state {lab.state} -d ds" in result.stderr
    lab.audit()
    write_tree(lab.tmp / "storage" / "nas" / "new", {"x": b"1"})
    lab.dataset("new", [{"location": "nas", "path": "new"}])
    lab.write()
    result = plan(lab, "--format", "json")
    assert result.exit_code == 5 and "no audit in the catalog for new" in result.stderr
    report = json.loads(result.stdout)
    PLAN_VALIDATOR.validate(report)
    assert report["unaudited"] == ["new"] and [d["name"] for d in report["datasets"]] == ["ds"]


def test_a_plan_after_the_inventory_changed_says_it_may_be_out_of_date(lab: Lab) -> None:
    lab.three_copies({"a": b"1"})
    lab.audit()
    assert plan(lab).exit_code == 0
    lab.locations["remote"]["site"] = "site-a"  # the "off-site" copy was never off-site
    lab.write()
    code, report = plan_json(lab)
    ds = dataset_of(report, "ds")
    assert code == 1 and "may be out of date" in ds["out_of_date"]
    assert "OUT OF DATE" in plan(lab).stdout


def test_a_verdict_no_copy_can_fix_is_said_not_hidden(lab: Lab,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies({"a": b"1"})
    lab.top["policy"] = "fixity-90d"
    assert lab.audit().exit_code == 0
    # 100 days on, no copy read in full since (--verify changed): max_age fails them all.
    monkeypatch.setenv("THREETWOONE_NOW", str(time.time() + 100 * 86400))
    assert lab.audit("--verify", "changed").exit_code == 1
    code, report = plan_json(lab)
    ds = dataset_of(report, "ds")
    assert code == 1 and ds["actions"] == [] and not ds["nothing_to_do"]
    assert "copying data does not fix" in ds["notes"][-1]
    assert "max_age" in ds["notes"][-1]
