"""Policy evaluation against spelling, a lost primary, an empty policy, copies
declared twice and a typo in the class map: none of them may ever make a PASS.

Each scenario runs end to end through the CLI on real local folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, dataset_of, run_cli, write_tree
from threetwoone.policy import CopyView, Policy, judge
from threetwoone.states import CopyState

FILES = {
    "run1/sample_R1.fastq.gz": os.urandom(20_000),
    "README.txt": b"sequencing run 1\n",
}


def place(lab: Lab, dataset: str, locations: list[str], **extra: Any) -> None:
    """One intact copy of ``dataset`` on each location; the first is the primary."""
    for name in locations:
        write_tree(Path(lab.locations[name]["root"]) / dataset, FILES)
    lab.dataset(dataset, [{"location": name, "path": dataset, "primary": i == 0}
                          for i, name in enumerate(locations)], **extra)


def audit(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    code, report = lab.audit_json(*args)
    return code, dataset_of(report, "ds")


def rules(ds: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {v["rule"]: (v["required"], v["found"]) for v in ds["violations"]}


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# -- 1. spelling makes no diversity --------------------------------------------------

def test_sites_and_media_differing_in_case_and_spaces_are_one(lab: Lab) -> None:
    lab.location("a", "disk", "uppsala")
    lab.location("b", "Disk", "Uppsala")
    lab.location("c", " disk ", "uppsala ")
    place(lab, "ds", ["a", "b", "c"])
    code, ds = audit(lab)
    assert code == 1 and ds["status"] == "fail"
    assert ds["counts"] == {"copies": 3, "media": 1, "offsite": 0, "sites": 1}
    assert rules(ds) == {"media": (2, 1), "offsite": (1, 0)}
    assert not any(c["offsite"] for c in ds["copies"])
    assert any("site 'Uppsala' (location b)" in w and "differ only in case, spaces or "
               "punctuation" in w for w in ds["warnings"]), ds["warnings"]


def test_media_synonyms_count_as_one_type(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("b", "hdd", "s2")
    lab.location("c", "Disk", "s3")
    place(lab, "ds", ["a", "b", "c"])
    code, ds = audit(lab)
    assert code == 1 and rules(ds) == {"media": (2, 1)}
    assert "disk: a:ds, b:ds, c:ds" in ds["violations"][0]["message"]
    assert any("media 'hdd' (location b)" in w and "same media type (disk)" in w
               for w in ds["warnings"]), ds["warnings"]


def test_punctuation_variants_are_one_media_type(lab: Lab) -> None:
    lab.location("a", "usb-disk", "s1")
    lab.location("b", "usb_disk", "s2")
    lab.location("c", "USB Disk", "s3")
    place(lab, "ds", ["a", "b", "c"])
    code, ds = audit(lab)
    assert code == 1 and rules(ds) == {"media": (2, 1)}


def test_zones_differing_in_case_and_spaces_are_one(lab: Lab) -> None:
    for name, zone, media, site in (("a", "Z1", "disk", "s1"), ("b", "z1", "tape", "s2"),
                                    ("c", "z1 ", "disk", "s3")):
        lab.location(name, media, site, zone=zone)
    place(lab, "ds", ["a", "b", "c"])
    code, ds = audit(lab, "--policy", "ndsa-storage-3")
    assert code == 1 and rules(ds) == {"zones": (2, 1)}
    assert ds["counts"]["zones"] == 1


def test_allowed_matches_normalised_values(lab: Lab, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("name: p\nrequire: {copies: 2}\nallowed: [{site: Uppsala, media: hdd}]\n")
    lab.location("a", "disk", "uppsala")
    lab.location("b", "HDD", " UPPSALA")
    place(lab, "ds", ["a", "b"])
    code, ds = audit(lab, "--policy", str(policy))
    assert code == 0 and ds["status"] == "pass", ds


def test_validate_warns_about_spelling_and_stays_valid(lab: Lab) -> None:
    lab.location("a", "disk", "uppsala", zone="north")
    lab.location("b", "hdd", "Uppsala", zone="North ")
    lab.location("c", "tape", "kth-stockholm")
    lab.location("d", "tape", "kth_stockholm")
    place(lab, "ds", ["a", "b", "c", "d"])
    path = lab.write()
    result = run_cli("validate", str(path))
    assert result.exit_code == 0, result.stderr
    assert "valid (4 locations, 1 dataset)" in result.stdout
    warnings = [w for w in result.stderr.splitlines() if w.startswith("threetwoone: warning: ")]
    assert len(warnings) == 4, result.stderr
    text = "\n".join(warnings)
    b_site = line_of(path, "site: Uppsala")
    assert f"{path}:{b_site}: locations.b.site: site 'Uppsala' (location b) and 'uppsala' " \
           "(location a) differ only in case, spaces or punctuation" in text
    assert "site 'kth_stockholm' (location d) and 'kth-stockholm' (location c)" in text
    assert "zone 'North ' (location b) and 'north' (location a)" in text
    assert "media 'hdd' (location b) and 'disk' (location a) are the same media type " \
           "(disk)" in text


def test_media_typo_warns_and_counts_as_its_own_type(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("b", "dsik", "s2")
    place(lab, "ds", ["a", "b"])
    path = lab.write()
    result = run_cli("validate", str(path))
    assert result.exit_code == 0
    assert f"{path}:{line_of(path, 'media: dsik')}: locations.b.media: media 'dsik' " \
           "(location b) is not a known media type (disk, removable, flash, tape, optical, " \
           "object): it counts as a media type of its own" in result.stderr
    code, ds = audit(lab, "--policy", "ndsa-storage-1")
    assert code == 0 and any("'dsik'" in w for w in ds["warnings"])


def test_validate_says_nothing_about_distinct_values(lab: Lab) -> None:
    lab.three_copies({"a.txt": b"a"})
    result = run_cli("validate", str(lab.write()))
    assert result.exit_code == 0 and result.stderr == ""


# -- 2. off-site among the copies that count --------------------------------------------

def lost_primary_lab(lab: Lab) -> None:
    lab.location("a", "disk", "lab")
    lab.location("b", "disk", "remote")
    lab.location("c", "tape", "remote")
    lab.location("d", "disk", "remote")
    place(lab, "ds", ["a", "b", "c", "d"])


def test_lost_primary_leaves_no_off_site_copy(lab: Lab) -> None:
    lost_primary_lab(lab)
    code, ds = audit(lab)
    assert code == 0 and ds["counts"] == {"copies": 4, "media": 2, "offsite": 3, "sites": 2}
    primary = Path(lab.locations["a"]["root"]) / "ds"
    primary.rename(primary.with_name("ds-moved"))
    code, ds = audit(lab)
    assert code == 1 and ds["status"] == "fail"
    assert copy_by_location({"datasets": [ds]}, "ds", "a")["state"] == "missing"
    assert ds["counts"] == {"copies": 3, "media": 2, "offsite": 3, "sites": 1}
    assert rules(ds) == {"sites": (2, 1)}
    message = ds["violations"][0]["message"]
    assert "counted copies stand at 1 site" in message
    assert "remote: b:ds, c:ds, d:ds" in message


def test_corrupt_primary_tolerated_still_needs_two_sites(lab: Lab, tmp_path: Path) -> None:
    policy = tmp_path / "tolerant.yaml"
    policy.write_text("name: tolerant\nrequire: {copies: 3, media: 2, offsite: 1, "
                      "corrupt: 1}\n")
    lost_primary_lab(lab)
    assert audit(lab, "--policy", str(policy))[0] == 0
    (Path(lab.locations["a"]["root"]) / "ds" / "README.txt").write_bytes(b"sequencing run 2\n")
    code, ds = audit(lab, "--policy", str(policy))
    assert copy_by_location({"datasets": [ds]}, "ds", "a")["state"] == "corrupt"
    assert code == 1 and rules(ds) == {"sites": (2, 1)}


def test_unreachable_primary_makes_off_site_unknown_not_pass(lab: Lab) -> None:
    lost_primary_lab(lab)
    assert audit(lab)[0] == 0
    root = Path(lab.locations["a"]["root"])
    root.rename(root.with_name("a-unmounted"))
    code, ds = audit(lab)
    assert code == 3 and ds["status"] == "unknown"
    assert rules(ds) == {"sites": (2, 1)}


def test_two_off_site_copies_need_three_sites(lab: Lab, tmp_path: Path) -> None:
    policy = tmp_path / "two-off.yaml"
    policy.write_text("name: two-off\nrequire: {copies: 3, offsite: 2}\n")
    lab.location("a", "disk", "lab")
    lab.location("b", "disk", "remote")
    lab.location("c", "disk", "remote")
    place(lab, "ds", ["a", "b", "c"])
    code, ds = audit(lab, "--policy", str(policy))
    assert code == 1 and rules(ds) == {"sites": (3, 2)}
    lab.locations["c"]["site"] = "far"
    code, ds = audit(lab, "--policy", str(policy))
    assert code == 0 and ds["counts"]["sites"] == 3


def test_repository_deposit_is_a_site_of_its_own_under_raw_offsite(lab: Lab) -> None:
    lab.location("nas", "disk", "uppsala")
    lab.location("usb", "removable", "uppsala")
    lab.location("deposit", "object", "uppsala", repository=True)
    place(lab, "ds", ["nas", "usb", "deposit"])
    code, ds = audit(lab, "--policy", "raw-offsite")
    assert code == 0 and ds["counts"]["sites"] == 2 and ds["counts"]["offsite"] == 1
    # The primary is lost: the usb copy and the deposit are still two places.
    shutil.rmtree(Path(lab.locations["nas"]["root"]) / "ds")
    code, ds = audit(lab, "--policy", "raw-offsite")
    assert code == 0 and ds["counts"] == {"copies": 2, "media": 2, "offsite": 1, "sites": 2}
    # 3-2-1 does not count the deposit as off-site: everything is at uppsala.
    code, ds = audit(lab, "--policy", "3-2-1")
    assert code == 1 and ds["counts"]["sites"] == 1
    assert rules(ds) == {"copies": (3, 2), "offsite": (1, 0)}


def test_two_deposits_at_one_repository_are_one_site(lab: Lab) -> None:
    lab.location("nas", "disk", "uppsala")
    lab.location("ena", "object", "ebi", repository=True)
    lab.location("ena-mirror", "object", "EBI", repository=True)
    place(lab, "ds", ["nas", "ena", "ena-mirror"])
    assert audit(lab, "--policy", "raw-offsite")[0] == 0
    shutil.rmtree(Path(lab.locations["nas"]["root"]) / "ds")
    code, ds = audit(lab, "--policy", "raw-offsite")
    assert code == 1 and ds["counts"]["sites"] == 1
    assert rules(ds) == {"sites": (2, 1)}


def test_sites_rule_counts_distinct_sites(lab: Lab, tmp_path: Path) -> None:
    policy = tmp_path / "sites.yaml"
    policy.write_text("name: three-sites\nrequire: {copies: 3, sites: 3}\n")
    lab.location("a", "disk", "s1")
    lab.location("b", "disk", "S1")
    lab.location("c", "disk", "s2")
    place(lab, "ds", ["a", "b", "c"])
    code, ds = audit(lab, "--policy", str(policy))
    assert code == 1 and rules(ds) == {"sites": (3, 2)}
    assert ds["violations"][0]["message"] == (
        "found 2, policy requires 3 distinct sites among the counted copies "
        "(s1: a:ds, b:ds; s2: c:ds)")
    shown = run_cli("policies", "show", str(policy))
    assert "at least 3 distinct sites among the counted copies" in shown.stdout


def test_policies_say_the_off_site_rule_in_sites() -> None:
    shown = run_cli("policies", "show", "3-2-1")
    assert "at least 1 counted copy at a site other than the primary's, the counted " \
           "copies at 2 distinct sites or more" in shown.stdout
    raw = run_cli("policies", "show", "raw-offsite")
    assert "(a repository deposit counts as off-site), the counted copies at 2 distinct " \
           "sites or more (a deposit is a site of its own)" in raw.stdout


# -- 3. an empty policy ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "where", "message"), [
    ("name: empty\nrequire: {}\n", "2: require",
     "a policy must require at least 1 intact copy (add copies: 1 or more)"),
    ("name: zero\nrequire:\n  copies: 0\n  media: 1\n", "3: require.copies",
     "must be 1 or more: a policy must require at least 1 intact copy"),
    ("name: nocopies\nrequire:\n  offsite: 1\n", "2: require",
     "a policy must require at least 1 intact copy (add copies: 1 or more)"),
])
def test_policy_requiring_no_copy_exits_4(lab: Lab, tmp_path: Path, text: str, where: str,
                                          message: str) -> None:
    policy = tmp_path / "empty.yaml"
    policy.write_text(text)
    lab.location("a", "disk", "s1")
    lab.dataset("ds", [{"location": "a", "path": "missing"}])
    result = lab.audit("--policy", str(policy))
    assert result.exit_code == 4, result.stdout
    assert f"{policy}:{where}: {message}" in result.stderr
    assert not lab.state.exists()
    assert run_cli("validate", str(lab.inventory), "--policy", str(policy)).exit_code == 4


def test_no_counted_copy_never_passes_whatever_the_policy() -> None:
    lenient = Policy(name="lenient", description="", require={"corrupt": 5}, source="-")
    gone = [CopyView(label=f"{x}:ds", location=x, media="disk", site="s", offsite=False,
                     state=CopyState.MISSING) for x in "ab"]
    judgement = judge(lenient, gone, 0.0)
    assert judgement.status == "fail"
    assert [(v.rule, v.required, v.found) for v in judgement.violations] == [("copies", 1, 0)]
    maybe = [CopyView(label="a:ds", location="a", media="disk", site="s", offsite=False,
                      state=CopyState.UNREACHABLE)]
    assert judge(lenient, maybe, 0.0).status == "unknown"


# -- 4. the same address declared twice -----------------------------------------------------

def test_same_copy_declared_twice_on_an_unreachable_location_counts_once(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("u", "tape", "s2", create=False)  # not mounted
    place(lab, "ds", ["a"])
    lab.datasets["ds"]["copies"] += [{"location": "u", "path": "ds"},
                                     {"location": "u", "path": "./ds/"}]
    code, ds = audit(lab)
    assert code == 1 and ds["status"] == "fail"
    assert rules(ds)["copies"] == (3, 1)
    second = ds["copies"][2]
    assert second["state"] == "unreachable" and second["same_as"] == "u:ds"
    assert "copy u:./ds/ is the same storage as u:ds; it counts once" in ds["warnings"]


def test_two_location_names_for_one_unmounted_root_count_once(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("u", "tape", "s2", create=False)
    lab.locations["u2"] = dict(lab.locations["u"])
    place(lab, "ds", ["a"])
    lab.datasets["ds"]["copies"] += [{"location": "u", "path": "ds"},
                                     {"location": "u2", "path": "ds"}]
    code, ds = audit(lab)
    assert code == 1 and rules(ds)["copies"] == (3, 1)


def test_same_intact_copy_declared_twice_counts_once_and_is_labelled_apart(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("b", "tape", "s2")
    place(lab, "ds", ["a", "b"])
    lab.datasets["ds"]["copies"].append({"location": "b", "path": "ds"})
    code, ds = audit(lab)
    assert code == 1 and rules(ds) == {"copies": (3, 2)}
    assert ds["counts"]["copies"] == 2
    assert [c["counted"] for c in ds["copies"]] == [True, True, False]
    assert ds["copies"][2]["same_as"] == "b:ds"


@pytest.mark.parametrize("spelling", ["ds", "./ds/"])
@pytest.mark.parametrize("damage", ["incomplete", "missing"])
def test_a_damaged_copy_declared_twice_is_warned_about_once(lab: Lab, spelling: str,
                                                            damage: str) -> None:
    """Once per storage, naming both declarations (the second is the first's
    verdict, not a second copy that happens to be damaged)."""
    for name in ("a", "b", "c"):
        lab.location(name, "disk", f"site-{name}")
    place(lab, "ds", ["a", "b", "c"], policy="ndsa-storage-1")
    lab.datasets["ds"]["copies"].append({"location": "c", "path": spelling})
    root = Path(lab.locations["c"]["root"]) / "ds"
    if damage == "missing":
        shutil.rmtree(root)
    else:
        (root / "README.txt").unlink()
    code, ds = audit(lab)
    assert code == 0 and ds["status"] == "pass"
    not_needed = [w for w in ds["warnings"] if "not needed to pass" in w]
    also = "declared twice" if spelling == "ds" else f"also declared as c:{spelling}"
    assert not_needed == [f"copy c:ds ({also}) is {damage} (not needed to pass)"]


def test_validate_warns_about_a_copy_declared_twice(lab: Lab) -> None:
    lab.location("a", "disk", "s1")
    lab.location("u", "tape", "s2", create=False)
    place(lab, "ds", ["a"])
    lab.datasets["ds"]["copies"] += [{"location": "u", "path": "ds"},
                                     {"location": "u", "path": "/ds"}]
    path = lab.write()
    result = run_cli("validate", str(path))
    assert result.exit_code == 0
    assert "datasets.ds.copies[2]: copy u:/ds is declared twice (also " \
           "datasets.ds.copies[1], u:ds); it counts once" in result.stderr


# -- 5. the whole inventory on every run -----------------------------------------------------

def class_lab(lab: Lab) -> Path:
    lab.location("nas", "disk", "uppsala")
    lab.location("remote", "disk", "kth")
    for name, cls in (("raw1", "raw"), ("derived1", "derived")):
        place(lab, name, ["nas", "remote"], **{"class": cls})
    return lab.write(policies={"raw": "raw-ofsite", "derived": "ndsa-storage-1"})


def test_typo_in_class_map_exits_4_when_other_datasets_are_selected(lab: Lab) -> None:
    path = class_lab(lab)
    line = line_of(path, "raw-ofsite")
    result = lab.audit("-d", "derived1", write=False)
    assert result.exit_code == 4
    assert f"{path}:{line}: policies.raw: no built-in policy or policy file named " \
           "'raw-ofsite'" in result.stderr
    assert not lab.state.exists()
    # --policy judges this run by another policy, but the inventory is still invalid.
    assert lab.audit("-d", "derived1", "--policy", "3-2-1", write=False).exit_code == 4


def test_unused_class_map_entry_and_unselected_dataset_policy_are_checked(lab: Lab) -> None:
    class_lab(lab)
    lab.datasets["raw1"]["policy"] = "ndsa-storage-9"
    path = lab.write(policies={"raw": "raw-offsite", "derived": "ndsa-storage-1",
                               "unused": "raw-ofsite"})
    result = lab.audit("-d", "derived1", write=False)
    assert result.exit_code == 4
    assert f"{path}:{line_of(path, 'ndsa-storage-9')}: datasets.raw1.policy: no built-in " \
           "policy" in result.stderr
    assert f"{path}:{line_of(path, 'raw-ofsite')}: policies.unused: no built-in " \
           "policy" in result.stderr
