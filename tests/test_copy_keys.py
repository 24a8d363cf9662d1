"""Copy keys: the catalog's name for a copy is unambiguous even though dataset
names (a collection's are ``<collection>/<match>``) and location names may hold
``/``.  Spelt ``dataset/location/path`` unescaped, dataset ``a`` on ``x`` at
``b/p`` and dataset ``a/x`` on ``b`` at ``p`` were one key: one copy's catalog
rows (its verified files, its last state) were read for the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Lab, copy_by_location, dataset_of, rot_in_place, write_tree
from threetwoone.inventory import CopySpec, copy_key

DAY = 86400.0
T0 = 1_800_000_000.0
FILES = {"run/a.fq": b"ACGT" * 300, "run/b.fq": b"TTGA" * 300}


def at(monkeypatch: pytest.MonkeyPatch, when: float) -> None:
    monkeypatch.setenv("THREETWOONE_NOW", str(when))


def test_names_holding_a_slash_give_distinct_keys() -> None:
    one = copy_key("a", CopySpec(location="x", path="b/p", primary=False, index=0))
    other = copy_key("a/x", CopySpec(location="b", path="p", primary=False, index=0))
    assert one != other
    # Through the location name too, and the escape itself escaped.
    assert copy_key("a", CopySpec("x/b", "p", False, 0)) != one
    assert copy_key("a%2Fx", CopySpec("b", "p", False, 0)) != other
    # Ordinary names keep the key existing catalogs hold.
    assert copy_key("ds", CopySpec("nas", "/ds/", True, 0)) == "ds/nas/ds"


def colliding_lab(lab: Lab) -> Path:
    """Dataset ``a`` with a copy on ``x`` at ``b/p``, dataset ``a/x`` with a copy
    on ``b`` at ``p`` (same files): the old key of both is ``a/x/b/p``.
    Returns the folder of ``a/x``'s copy on ``b``."""
    x = lab.location("x", "disk", "site-a")
    b = lab.location("b", "disk", "site-a")
    tape = lab.location("tape", "tape", "site-a")
    remote = lab.location("remote", "disk", "site-b")
    for folder in (x / "b" / "p", tape / "a", remote / "a",
                   b / "p", tape / "ax", remote / "ax"):
        write_tree(folder, FILES)
    lab.dataset("a", [{"location": "x", "path": "b/p", "primary": True},
                      {"location": "tape", "path": "a"},
                      {"location": "remote", "path": "a"}])
    lab.dataset("a/x", [{"location": "tape", "path": "ax", "primary": True},
                        {"location": "b", "path": "p"},
                        {"location": "remote", "path": "ax"}])
    return b / "p"


def test_one_copys_rows_are_never_read_for_another(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    corrupt = colliding_lab(lab)
    # Dataset a is audited: its intact copy on x has catalog rows.
    at(monkeypatch, T0)
    assert lab.audit_json("-d", "a", "--verify", "full")[0] == 0
    # a/x's copy on b, never audited, holds the same files, one of them rotten
    # (same size, same mtime): nothing in the catalog vouches for it.
    rot_in_place(corrupt / "run" / "a.fq", 7)
    at(monkeypatch, T0 + DAY)
    code, report = lab.audit_json("-d", "a/x", "--verify", "changed")
    copy = copy_by_location(report, "a/x", "b")
    assert code == 1, copy
    assert copy["state"] == "corrupt"
    assert dataset_of(report, "a/x")["status"] == "fail"


def test_an_offline_copy_remembers_its_own_state(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The remembered state of offline media is the catalog's: that of the copy
    itself, never of another copy that shared its key."""
    corrupt = colliding_lab(lab)
    lab.locations["b"].update({"offline": True, "offline_max_age": "90d"})
    rot_in_place(corrupt / "run" / "a.fq", 7)
    at(monkeypatch, T0)
    code, report = lab.audit_json("--verify", "full")
    assert code == 1 and copy_by_location(report, "a/x", "b")["state"] == "corrupt"
    at(monkeypatch, T0 + DAY)
    assert lab.audit_json("-d", "a", "--verify", "full")[0] == 0
    root = corrupt.parent
    root.rename(root.with_name("b-in-the-drawer"))
    at(monkeypatch, T0 + 2 * DAY)
    code, report = lab.audit_json("-d", "a/x")
    copy = copy_by_location(report, "a/x", "b")
    assert code == 1, copy
    assert (copy["state"], copy["verification"]) == ("corrupt", "remembered")
