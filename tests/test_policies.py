"""The policy library: every built-in policy passing and failing at its exact
boundary on real audited trees (through the CLI), classes, user policy files,
bad policies, and the pure judgement at its edges."""

from __future__ import annotations

import os
import re
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, dataset_of, run_cli, write_tree
from threetwoone.policy import CopyView, judge
from threetwoone.policyfile import builtin_names, load_policy
from threetwoone.states import CopyState

FILES = {
    "run1/sample_R1.fastq.gz": os.urandom(20_000),
    "README.txt": b"sequencing run 1\n",
}
DAY = 86400.0


def place(lab: Lab, dataset: str, locations: list[str], primary: str | None = None,
          **extra: Any) -> None:
    """``dataset`` with one intact copy on each of ``locations`` (the first, or
    ``primary``, is the primary)."""
    primary = primary or locations[0]
    for name in locations:
        write_tree(Path(lab.locations[name]["root"]) / dataset, FILES)
    lab.dataset(dataset, [{"location": name, "path": dataset, "primary": name == primary}
                          for name in locations], **extra)


def audit(lab: Lab, policy: str, *args: str) -> tuple[int, dict[str, Any]]:
    code, report = lab.audit_json("--policy", policy, *args)
    return code, dataset_of(report, "ds")


def rules(ds: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {v["rule"]: (v["required"], v["found"]) for v in ds["violations"]}


def age_copy(lab: Lab, dataset: str, location: str, days: float) -> None:
    """Make the catalog remember ``location``'s copy as last fully verified
    ``days`` earlier than it was (the audit then trusts it with --verify changed)."""
    with sqlite3.connect(lab.state) as db:
        cursor = db.execute("UPDATE copy_files SET verified_at = verified_at - ?, "
                            "full_at = full_at - ? WHERE copy LIKE ?",
                            (days * DAY, days * DAY, f"{dataset}/{location}/%"))
        assert cursor.rowcount == len(FILES)


# -- listing ------------------------------------------------------------------------

def test_policies_lists_every_builtin_with_rules_in_words() -> None:
    result = run_cli("policies")
    assert result.exit_code == 0
    names = builtin_names()
    assert {"3-2-1", "3-2-1-1-0", "ndsa-storage-1", "ndsa-storage-2", "ndsa-storage-3",
            "ndsa-storage-4", "fixity-90d", "raw-offsite", "sensitive"} <= set(names)
    for name in names:
        assert re.search(rf"^{re.escape(name)}: at least \d+ intact cop", result.stdout,
                         re.M), name
    assert "at least 3 distinct disaster-threat zones among the counted copies" in result.stdout
    assert "at least 1 counted copy on immutable or offline locations" in result.stdout
    assert "fully verified within the last 90 days" in result.stdout
    assert "every copy on a location with sensitive_ok: true" in result.stdout
    assert "(a repository deposit counts as off-site)" in result.stdout
    assert "attested, not checked: the obsolescence of storage and media is tracked" \
        in result.stdout


@pytest.mark.parametrize("name", ["3-2-1", "3-2-1-1-0", "ndsa-storage-1", "ndsa-storage-2",
                                  "ndsa-storage-3", "ndsa-storage-4", "fixity-90d",
                                  "raw-offsite", "sensitive"])
def test_each_builtin_cites_its_source(name: str) -> None:
    shown = run_cli("policies", "show", name)
    assert shown.exit_code == 0
    assert f"name: {name}" in shown.stdout
    cited = {"3-2-1": "US-CERT", "3-2-1-1-0": "Veeam", "fixity-90d": "NDSA",
             "raw-offsite": "SciLifeLab", "sensitive": "GDPR"}.get(name, "NDSA Levels of "
                                                                         "Digital Preservation")
    assert cited in shown.stdout


def test_ndsa_levels_show_attested_criteria_and_report_carries_them(lab: Lab) -> None:
    shown = run_cli("policies", "show", "ndsa-storage-4")
    assert "attested (stated by the standard, not checkable by an audit):" in shown.stdout
    assert "storage is diversified to avoid single points of failure" in shown.stdout
    lab.location("a", "disk", "s1")
    lab.location("b", "disk", "s2")
    place(lab, "ds", ["a", "b"])
    _code, ds = audit(lab, "ndsa-storage-1")
    assert ds["status"] == "pass"
    assert ds["attested"] == ["all storage media where content is stored are documented",
                              "content is put into stable storage"]
    table = lab.audit("--policy", "ndsa-storage-1", "--format", "table")
    assert "attested (not checked by an audit): content is put into stable storage" \
        in table.stdout


# -- 3-2-1-1-0 and fixity-90d: immutable copies and max_age ----------------------------

def lab_3_2_1_1_0(lab: Lab, immutable: bool = True) -> None:
    lab.location("nas", "disk", "site-a")
    lab.location("tape", "tape", "site-a", offline=immutable)
    lab.location("remote", "disk", "site-b")
    place(lab, "ds", ["nas", "tape", "remote"])


def test_3_2_1_1_0_passes_with_one_offline_copy(lab: Lab) -> None:
    lab_3_2_1_1_0(lab)
    code, ds = audit(lab, "3-2-1-1-0")
    assert code == 0 and ds["status"] == "pass"
    assert ds["counts"] == {"copies": 3, "media": 2, "offsite": 1, "sites": 2, "immutable": 1}


def test_3_2_1_1_0_fails_without_an_immutable_or_offline_copy(lab: Lab) -> None:
    lab_3_2_1_1_0(lab, immutable=False)
    code, ds = audit(lab, "3-2-1-1-0")
    assert code == 1 and ds["status"] == "fail"
    assert rules(ds) == {"immutable": (1, 0)}
    # The same trees pass plain 3-2-1: the extra "1" is what failed.
    assert audit(lab, "3-2-1")[0] == 0


def test_3_2_1_1_0_object_lock_counts_as_immutable(lab: Lab) -> None:
    lab.location("nas", "disk", "site-a")
    lab.location("tape", "tape", "site-a")
    lab.location("remote", "object", "site-b", immutable=True)
    place(lab, "ds", ["nas", "tape", "remote"])
    code, ds = audit(lab, "3-2-1-1-0")
    assert code == 0 and ds["counts"]["immutable"] == 1


def test_3_2_1_1_0_unreachable_immutable_copy_is_unknown_not_pass(lab: Lab) -> None:
    lab_3_2_1_1_0(lab)
    assert audit(lab, "3-2-1-1-0")[0] == 0
    # The offline tape is not mounted tonight: its root is gone, the copy unreachable.
    tape_root = Path(lab.locations["tape"]["root"])
    tape_root.rename(tape_root.with_name("tape-away"))
    code, ds = audit(lab, "3-2-1-1-0")
    assert code == 3 and ds["status"] == "unknown"
    assert rules(ds)["immutable"] == (1, 0)


@pytest.mark.parametrize("policy", ["fixity-90d", "3-2-1-1-0"])
@pytest.mark.parametrize(("days", "passes"), [(89, True), (91, False)])
def test_max_age_boundary(lab: Lab, policy: str, days: int, passes: bool) -> None:
    lab_3_2_1_1_0(lab)
    assert audit(lab, policy)[0] == 0  # first audit: everything verified now
    age_copy(lab, "ds", "remote", days)
    # --verify changed trusts the unchanged files, so the remote copy keeps its age.
    code, ds = audit(lab, policy, "--verify", "changed")
    remote = copy_by_location({"datasets": [ds]}, "ds", "remote")
    assert remote["state"] == "intact"
    if passes:
        assert code == 0 and ds["status"] == "pass" and remote["counted"]
        assert not any("not counted" in w for w in ds["warnings"])
    else:
        assert code == 1 and ds["status"] == "fail" and not remote["counted"]
        assert f"copy remote:ds not counted: last full verification {days} days ago, " \
               "policy max_age 90d" in ds["warnings"]
        assert rules(ds) == {"copies": (3, 2), "offsite": (1, 0)}
        offsite = next(v for v in ds["violations"] if v["rule"] == "offsite")
        assert offsite["message"] == ("found 0, policy requires 1 counted copy at a site "
                                      "other than the primary's (off-site: none)")


def test_max_age_ignored_by_policies_without_it(lab: Lab) -> None:
    lab_3_2_1_1_0(lab)
    assert audit(lab, "3-2-1")[0] == 0
    age_copy(lab, "ds", "remote", 400)
    code, ds = audit(lab, "3-2-1", "--verify", "changed")
    assert code == 0 and ds["status"] == "pass"


def test_full_verification_makes_an_old_copy_count_again(lab: Lab) -> None:
    lab_3_2_1_1_0(lab)
    assert audit(lab, "fixity-90d")[0] == 0
    age_copy(lab, "ds", "remote", 120)
    assert audit(lab, "fixity-90d", "--verify", "changed")[0] == 1
    code, ds = audit(lab, "fixity-90d", "--verify", "full")
    assert code == 0 and ds["status"] == "pass"


# -- NDSA storage levels ---------------------------------------------------------------

def test_ndsa_1_two_copies_in_separate_locations(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("b", "disk", "s1")
    place(lab, "ds", ["a", "b"])
    code, ds = audit(lab, "ndsa-storage-1")
    assert code == 0 and ds["counts"]["locations"] == 2


def test_ndsa_1_two_copies_on_one_location_fail(lab: Lab) -> None:
    root = lab.location("a", "disk", "s1")
    write_tree(root / "ds", FILES)
    write_tree(root / "ds-copy", FILES)
    lab.dataset("ds", [{"location": "a", "path": "ds", "primary": True},
                       {"location": "a", "path": "ds-copy"}])
    code, ds = audit(lab, "ndsa-storage-1")
    assert code == 1
    assert ds["counts"]["copies"] == 2
    assert rules(ds) == {"locations": (2, 1)}


def test_ndsa_2_needs_a_separate_geographic_location(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("b", "tape", "s1")
    lab.location("c", "disk", "s1")
    place(lab, "ds", ["a", "b", "c"])
    code, ds = audit(lab, "ndsa-storage-2")
    assert code == 1 and rules(ds) == {"offsite": (1, 0)}
    lab.locations["c"]["site"] = "s2"
    code, ds = audit(lab, "ndsa-storage-2")
    assert code == 0 and ds["status"] == "pass"


def test_ndsa_2_needs_three_copies(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("c", "disk", "s2")
    place(lab, "ds", ["a", "c"])
    code, ds = audit(lab, "ndsa-storage-2")
    assert code == 1 and rules(ds) == {"copies": (3, 2)}


def zoned_lab(lab: Lab, zones: tuple[str | None, str | None, str | None],
              media: tuple[str, str, str] = ("disk", "tape", "disk")) -> None:
    for name, zone, medium, site in zip("abc", zones, media, ("s1", "s2", "s3"), strict=True):
        extra: dict[str, Any] = {"zone": zone} if zone else {}
        lab.location(name, medium, site, **extra)
    place(lab, "ds", ["a", "b", "c"])


def test_ndsa_3_two_zones_pass(lab: Lab) -> None:
    zoned_lab(lab, ("uppsala", "uppsala", "linkoping"))
    code, ds = audit(lab, "ndsa-storage-3")
    assert code == 0 and ds["counts"]["zones"] == 2


def test_ndsa_3_one_zone_fails_and_names_the_zones(lab: Lab) -> None:
    zoned_lab(lab, ("uppsala", "uppsala", None))
    code, ds = audit(lab, "ndsa-storage-3")
    assert code == 1 and rules(ds) == {"zones": (2, 1)}
    message = ds["violations"][0]["message"]
    assert "zone uppsala: a:ds, b:ds" in message
    assert "no zone declared (set zone: on the location): c:ds" in message


def test_ndsa_3_one_media_type_fails(lab: Lab) -> None:
    zoned_lab(lab, ("z1", "z2", "z3"), media=("disk", "disk", "disk"))
    code, ds = audit(lab, "ndsa-storage-3")
    assert code == 1 and rules(ds) == {"media": (2, 1)}


def test_ndsa_4_three_zones_pass_two_fail(lab: Lab) -> None:
    zoned_lab(lab, ("z1", "z2", "z3"))
    code, ds = audit(lab, "ndsa-storage-4")
    assert code == 0 and ds["counts"]["zones"] == 3
    lab.locations["c"]["zone"] = "z2"
    code, ds = audit(lab, "ndsa-storage-4")
    assert code == 1 and rules(ds) == {"zones": (3, 2)}
    # Level 3 is still met by the same trees.
    assert audit(lab, "ndsa-storage-3")[0] == 0


def test_ndsa_4_corrupt_copy_in_a_third_zone_fails(lab: Lab) -> None:
    zoned_lab(lab, ("z1", "z2", "z3"))
    assert audit(lab, "ndsa-storage-4")[0] == 0
    target = Path(lab.locations["c"]["root"]) / "ds" / "README.txt"
    target.write_bytes(b"sequencing run 2\n")  # same size, other content
    code, ds = audit(lab, "ndsa-storage-4")
    assert code == 1
    assert rules(ds) == {"zones": (3, 2), "locations": (3, 2), "copies": (3, 2),
                         "corrupt": (0, 1)}


# -- raw-offsite: a repository deposit counts -------------------------------------------

def test_raw_offsite_repository_deposit_counts(lab: Lab) -> None:
    lab.location("nas", "disk", "uppsala")
    lab.location("deposit", "object", "uppsala", repository=True)
    place(lab, "ds", ["nas", "deposit"])
    code, ds = audit(lab, "raw-offsite")
    assert code == 0 and ds["counts"]["offsite"] == 1
    # The copy itself stays "not off-site" by site (README "Verdicts"); the policy counts it.
    assert copy_by_location({"datasets": [ds]}, "ds", "deposit")["offsite"] is False


def test_raw_offsite_fails_without_off_site_or_repository_copy(lab: Lab) -> None:
    lab.location("nas", "disk", "uppsala")
    lab.location("deposit", "object", "uppsala")
    place(lab, "ds", ["nas", "deposit"])
    code, ds = audit(lab, "raw-offsite")
    assert code == 1 and rules(ds) == {"offsite": (1, 0)}


def test_repository_deposit_is_not_off_site_for_3_2_1(lab: Lab) -> None:
    lab.location("nas", "disk", "uppsala")
    lab.location("usb", "usb-disk", "uppsala")
    lab.location("deposit", "object", "uppsala", repository=True)
    place(lab, "ds", ["nas", "usb", "deposit"])
    code, ds = audit(lab, "3-2-1")
    assert code == 1 and rules(ds) == {"offsite": (1, 0)}
    assert "this policy does not count a repository deposit as off-site" \
        in ds["violations"][0]["message"]


def test_raw_offsite_deposit_must_be_intact(lab: Lab) -> None:
    lab.location("nas", "disk", "uppsala")
    lab.location("deposit", "object", "uppsala", repository=True)
    place(lab, "ds", ["nas", "deposit"])
    assert audit(lab, "raw-offsite")[0] == 0
    (Path(lab.locations["deposit"]["root"]) / "ds" / "README.txt").unlink()
    code, ds = audit(lab, "raw-offsite")
    assert code == 1 and rules(ds) == {"copies": (2, 1), "offsite": (1, 0)}


# -- sensitive: placement ----------------------------------------------------------------

def sensitive_lab(lab: Lab) -> None:
    lab.location("nas", "disk", "s1", sensitive_ok=True)
    lab.location("tape", "tape", "s1", sensitive_ok=True)
    lab.location("remote", "disk", "s2", sensitive_ok=True)
    place(lab, "ds", ["nas", "tape", "remote"])


def test_sensitive_on_approved_locations_passes(lab: Lab) -> None:
    sensitive_lab(lab)
    code, ds = audit(lab, "sensitive")
    assert code == 0 and ds["status"] == "pass"


def test_sensitive_intact_copy_on_unapproved_location_fails(lab: Lab) -> None:
    sensitive_lab(lab)
    lab.location("usb", "usb-disk", "s1")
    write_tree(Path(lab.locations["usb"]["root"]) / "ds", FILES)
    lab.datasets["ds"]["copies"].append({"location": "usb", "path": "ds"})
    code, ds = audit(lab, "sensitive")
    assert code == 1 and ds["status"] == "fail"
    usb = copy_by_location({"datasets": [ds]}, "ds", "usb")
    assert usb["state"] == "intact" and usb["counted"] is False
    assert rules(ds) == {"allowed": (0, 1)}
    message = ds["violations"][0]["message"]
    assert "usb:ds (intact)" in message and "allowed: sensitive_ok: true" in message
    assert ("copy usb:ds not counted: location 'usb' is not allowed by policy sensitive "
            "(allowed: sensitive_ok: true)") in ds["warnings"]
    # 3-2-1 alone would pass: the placement rule is what fails it.
    assert audit(lab, "3-2-1")[0] == 0


def test_sensitive_unreachable_unapproved_copy_still_fails(lab: Lab) -> None:
    sensitive_lab(lab)
    lab.location("usb", "usb-disk", "s1", create=False)  # not mounted
    lab.datasets["ds"]["copies"].append({"location": "usb", "path": "ds"})
    code, ds = audit(lab, "sensitive")
    assert copy_by_location({"datasets": [ds]}, "ds", "usb")["state"] == "unreachable"
    assert code == 1 and ds["status"] == "fail"


# -- classes and user policy files --------------------------------------------------------

def class_lab(lab: Lab) -> None:
    lab.location("nas", "disk", "uppsala", sensitive_ok=True)
    lab.location("deposit", "object", "uppsala", repository=True)
    for name in ("raw1", "derived1", "patients"):
        place(lab, name, ["nas", "deposit"])
    lab.datasets["raw1"]["class"] = "raw"
    lab.datasets["derived1"]["class"] = "derived"
    lab.datasets["patients"]["class"] = "sensitive"


def test_class_to_policy_mapping(lab: Lab) -> None:
    class_lab(lab)
    lab.write(policies={"raw": "raw-offsite", "derived": "ndsa-storage-1",
                        "sensitive": "sensitive"})
    code, report = lab.audit_json(write=False)
    assert code == 1
    got = {d["name"]: (d["policy"], d["status"]) for d in report["datasets"]}
    assert got == {"raw1": ("raw-offsite", "pass"), "derived1": ("ndsa-storage-1", "pass"),
                   "patients": ("sensitive", "fail")}
    patients = dataset_of(report, "patients")
    assert rules(patients) == {"allowed": (0, 1), "copies": (3, 1), "media": (2, 1),
                               "offsite": (1, 0)}


def test_dataset_policy_beats_class_and_option_beats_both(lab: Lab) -> None:
    class_lab(lab)
    lab.datasets["patients"]["policy"] = "ndsa-storage-1"
    lab.write(policies={"raw": "raw-offsite", "derived": "ndsa-storage-1",
                        "sensitive": "sensitive"}, policy="3-2-1")
    code, report = lab.audit_json(write=False)
    assert code == 0
    assert dataset_of(report, "patients")["policy"] == "ndsa-storage-1"
    code, report = lab.audit_json("--policy", "raw-offsite", write=False)
    assert code == 0
    assert {d["policy"] for d in report["datasets"]} == {"raw-offsite"}


def test_unknown_class_exits_4_with_line(lab: Lab) -> None:
    class_lab(lab)
    lab.datasets["raw1"]["class"] = "rwa"
    path = lab.write(policies={"raw": "raw-offsite", "derived": "ndsa-storage-1",
                               "sensitive": "sensitive"})
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if "class: rwa" in text)
    result = lab.audit(write=False)
    assert result.exit_code == 4
    assert (f"{path}:{line}: datasets.raw1.class: unknown class 'rwa' (classes in "
            "policies: raw, derived, sensitive)") in result.stderr
    assert not lab.state.exists()
    assert run_cli("validate", str(path)).exit_code == 4


def test_class_map_naming_a_missing_policy_points_at_the_map(lab: Lab) -> None:
    class_lab(lab)
    path = lab.write(policies={"raw": "raw-ofsite", "derived": "ndsa-storage-1",
                               "sensitive": "sensitive"})
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if "raw-ofsite" in text)
    result = run_cli("validate", str(path))
    assert result.exit_code == 4
    assert f"{path}:{line}: policies.raw: no built-in policy or policy file named " \
           "'raw-ofsite'" in result.stderr


USER_POLICY = """\
name: two-zones-fresh
description: Our group's rule, two zones and checked within four weeks.
require:
  copies: 2
  zones: 2
max_age: 4w
allowed:
  - {site: [uppsala, linkoping]}
attested:
  - the data management plan names both sites
"""


def test_user_policy_file(lab: Lab) -> None:
    (lab.tmp / "ours.yaml").write_text(USER_POLICY)
    lab.location("a", "disk", "uppsala", zone="north")
    lab.location("b", "disk", "linkoping", zone="south")
    place(lab, "ds", ["a", "b"])
    lab.write(policy="ours.yaml")  # relative to the inventory's folder
    code, report = lab.audit_json(write=False)
    ds = dataset_of(report, "ds")
    assert code == 0 and ds["policy"] == "two-zones-fresh"
    assert ds["counts"] == {"copies": 2, "media": 1, "offsite": 1, "zones": 2}
    assert ds["attested"] == ["the data management plan names both sites"]
    # A copy in Stockholm breaks the site rule even though every copy is intact.
    lab.location("c", "disk", "stockholm", zone="east")
    write_tree(Path(lab.locations["c"]["root"]) / "ds", FILES)
    lab.datasets["ds"]["copies"].append({"location": "c", "path": "ds"})
    lab.write(policy="ours.yaml")
    code, report = lab.audit_json(write=False)
    assert code == 1 and rules(dataset_of(report, "ds")) == {"allowed": (0, 1)}
    shown = run_cli("policies", "show", str(lab.tmp / "ours.yaml"))
    assert "every copy on a location with site one of uppsala, linkoping" in shown.stdout
    assert "fully verified within the last 4 weeks" in shown.stdout


@pytest.mark.parametrize(("text", "where", "message"), [
    ("name: x\nrequire: {copies: 3}\ncolour: red\n", "3: colour",
     "unknown key 'colour'"),
    ("name: x\nrequire:\n  copies: 3\n  immutable: -1\n", "4: require.immutable",
     "must be a whole number >= 0"),
    ("name: x\nrequire:\n  zones: many\n", "3: require.zones", "must be a whole number >= 0"),
    ("name: x\nrequire:\n  copies: 3\n  max_age: 90d\n", "4: require.max_age",
     "'max_age' is a top-level policy key, not a rule under 'require'"),
    ("name: x\nrequire: {copies: 3}\nmax_age: -5d\n", "3: max_age",
     "must be a positive duration"),
    ("name: x\nrequire: {copies: 3}\nmax_age: 90 days\n", "3: max_age",
     "must be a positive duration"),
    ("name: x\nrequire: {copies: 3}\nmax_age: 0d\n", "3: max_age",
     "must be a positive duration"),
    ("name: x\nrequire: {copies: 3}\nrepository_counts_offsite: yes please\n",
     "3: repository_counts_offsite", "must be true or false"),
    ("name: x\nrequire: {copies: 3}\nallowed:\n  - {approved: true}\n",
     "4: allowed[0].approved", "unknown location attribute 'approved'"),
    ("name: x\nrequire: {copies: 3}\nallowed:\n  - {sensitive_ok: 1}\n",
     "4: allowed[0].sensitive_ok", "must be true or false"),
    ("name: x\nrequire: {copies: 3}\nallowed: []\n", "3: allowed", "must be a non-empty list"),
    ("name: x\nrequire: {copies: 3, copies: 2}\n", "2: require.copies", "duplicate key"),
])
def test_bad_policy_exits_4_with_file_line_keypath(lab: Lab, text: str, where: str,
                                                   message: str) -> None:
    bad = lab.tmp / "bad.yaml"
    bad.write_text(text)
    lab.location("a", "disk", "s1")
    place(lab, "ds", ["a"])
    result = lab.audit("--policy", str(bad))
    assert result.exit_code == 4
    assert f"{bad}:{where}: {message}" in result.stderr
    assert not lab.state.exists()  # nothing was audited
    assert run_cli("policies", "show", str(bad)).exit_code == 4


def test_every_builtin_loads_and_is_named_after_its_file() -> None:
    for name in builtin_names():
        assert load_policy(name).name == name


# -- the pure judgement at its edges ----------------------------------------------------

def view(label: str, state: str = "intact", verified_at: float | None = 0.0,
         **attributes: Any) -> CopyView:
    return CopyView(label=label, location=label, media="disk", site="s1", offsite=False,
                    state=CopyState(state), attributes=attributes, verified_at=verified_at)


def test_max_age_exact_boundary_counts(tmp_path: Path) -> None:
    policy = load_policy("fixity-90d")
    copy = view("a", verified_at=1000.0)
    assert judge(policy, [copy], 1000.0 + 90 * DAY).counted == [True]
    late = judge(policy, [copy], 1000.0 + 90 * DAY + 1)
    assert late.counted == [False]
    assert late.not_counted[0] == "last full verification 90 days ago, policy max_age 90d"
    never = judge(policy, [view("b", verified_at=None)], 0.0)
    assert never.not_counted[0] == "never fully verified, policy max_age 90d"


def test_max_age_message_never_rounds_down_across_the_limit(tmp_path: Path) -> None:
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text("name: p\nrequire: {copies: 1}\nmax_age: 2d\n")
    policy = load_policy(str(policy_file))
    late = judge(policy, [view("a", verified_at=0.0)], 2.5 * DAY)
    assert late.not_counted[0] == "last full verification 2.5 days ago, policy max_age 2d"


def test_counts_report_only_the_rules_a_policy_has() -> None:
    copies = [view("a", zone="z1", offline=True), view("b", zone="z2")]
    assert judge(load_policy("3-2-1"), copies, 0.0).counts.as_dict() == {
        "copies": 2, "media": 1, "offsite": 0, "sites": 1}
    assert judge(load_policy("ndsa-storage-4"), copies, 0.0).counts.as_dict() == {
        "copies": 2, "media": 1, "offsite": 0, "sites": 1, "zones": 2, "locations": 2}
    assert "sites" not in judge(load_policy("ndsa-storage-1"), copies, 0.0).counts.as_dict()
    assert judge(load_policy("3-2-1-1-0"), copies, 0.0).counts.as_dict()["immutable"] == 1


def test_undetermined_copy_on_a_forbidden_location_cannot_rescue(tmp_path: Path) -> None:
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text(textwrap.dedent("""\
        name: p
        require: {copies: 2}
        allowed: [{zone: safe}]
        """))
    policy = load_policy(str(policy_file))
    ok = view("a", zone="safe")
    assert judge(policy, [ok, view("b", "unreachable", zone="safe")], 0.0).status == "unknown"
    assert judge(policy, [ok, view("c", "unreachable", zone="other")], 0.0).status == "fail"


def test_policies_example_gives_the_documented_verdicts(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "policies" / "inventory.yaml"
    result = run_cli("audit", str(example), "--state", str(tmp_path / "state.sqlite3"),
                     "--format", "json")
    assert result.exit_code == 1
    got = {d["name"]: (d["policy"], d["status"]) for d in result.json()["datasets"]}
    assert got == {"ngs-P1-raw": ("raw-offsite", "pass"),
                   "ngs-P2-raw": ("raw-offsite", "fail"),
                   "ngs-P1-qc": ("ndsa-storage-1", "pass"),
                   "clinic-imaging": ("sensitive", "fail"),
                   "cohort-archive": ("3-2-1-1-0", "pass")}


def test_table_shows_extra_counts_only_for_policies_with_those_rules(lab: Lab) -> None:
    lab.three_copies({"a.txt": b"a"}, name="plain")
    for name, zone in (("nas", "z1"), ("tape", "z1"), ("remote", "z2")):
        lab.locations[name]["zone"] = zone
    lab.three_copies({"b.txt": b"b"}, name="zoned", policy="ndsa-storage-3")
    for name, zone in (("nas", "z1"), ("tape", "z1"), ("remote", "z2")):
        lab.locations[name]["zone"] = zone
    result = lab.audit()
    header, _rule, *rows = result.stdout.splitlines()
    assert header.split()[7:9] == ["sites", "zones"]  # after "counted copies"
    plain = next(r for r in rows if r.startswith("plain "))
    zoned = next(r for r in rows if r.startswith("zoned "))
    assert plain.split()[6:8] == ["2", "-"] and zoned.split()[6:8] == ["2", "2"]
