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


# -- catalogs written before the escaping ---------------------------------------------

def old_catalog(path: Path, old: float, recent: float) -> None:
    """A catalog at the schema before the escaping (4), as its audits left it:
    collection dataset ``runs/2024`` on ``tape`` under its old key, and on ``nas``
    under its new one (written by a release with the escaping but without this
    migration); dataset ``50%`` on ``nas`` under its old key; dataset ``ds`` on
    ``x/b`` (a location holding ``/``) under its old key, told by the run that
    wrote it; ordinary ``ds`` on ``nas``.  Rows under old keys were last
    verified at ``old``, the others at ``recent``."""
    import sqlite3

    from threetwoone.catalog import MIGRATIONS

    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                   "applied_at TEXT NOT NULL)")
        for number, migration in enumerate(MIGRATIONS[:4], start=1):
            db.executescript(migration)
            db.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01T00:00:00Z')",
                       (number,))
        db.execute("INSERT INTO runs VALUES (1, '2026-01-01T00:00:00Z', "
                   "'2026-01-01T00:00:00Z', 'inv.yaml', 'someone', 'pass', 0)")
        for dataset in ("runs/2024", "ds"):
            db.execute("INSERT INTO datasets (name, reference_source, reference_at) "
                       "VALUES (?, 'primary', '2026-01-01T00:00:00Z')", (dataset,))
            db.execute("INSERT INTO reference_files (dataset, path, size, digests) "
                       "VALUES (?, ?, 4, '{}')", (dataset, b"run/a.fq"))
        for copy, dataset, now in (("runs/2024/tape/runs/2024", "runs/2024", old),
                                   ("runs%2F2024/nas/runs/2024", "runs/2024", recent),
                                   ("50%/nas/p", "50%", old),
                                   ("ds/x/b/ds", "ds", old), ("ds/nas/ds", "ds", recent)):
            db.execute("INSERT INTO copies (copy, dataset, last_audit_at, last_state) "
                       "VALUES (?, ?, ?, 'intact')", (copy, dataset, now))
            db.execute("INSERT INTO copy_files (copy, path, size, verified_at, result, "
                       "full_at, evidence, ref_version) "
                       "VALUES (?, ?, 4, ?, 'ok', ?, 'full', 1)", (copy, b"run/a.fq", now, now))
        db.execute("INSERT INTO run_copies VALUES (1, 'ds', 0, 'ds/x/b/ds', 'x/b', ?, 1, "
                   "'intact', 1, NULL, NULL, 1, 4)", (b"ds",))


def test_rows_under_old_keys_are_dropped_on_upgrade(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written under a copy's old, unescaped key are never read again: the
    upgrade drops them (those copies are verified in full once), so status no
    longer lists them nor counts them overdue; everything else stays."""
    import json
    import sqlite3

    from conftest import run_cli
    from threetwoone.catalog import Catalog

    old_catalog(lab.state, T0, T0 + 300 * DAY)
    at(monkeypatch, T0 + 400 * DAY)
    Catalog(str(lab.state)).close()
    with sqlite3.connect(lab.state) as db:
        kept = {"runs%2F2024/nas/runs/2024", "ds/nas/ds"}
        assert {row[0] for row in db.execute("SELECT copy FROM copies")} == kept
        assert {row[0] for row in db.execute("SELECT DISTINCT copy FROM copy_files")} == kept
        assert sorted(db.execute("SELECT dataset, path FROM reference_files")) == \
            [("ds", b"run/a.fq"), ("runs/2024", b"run/a.fq")]
        assert db.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 2
        # History keeps the key the run wrote.
        assert db.execute("SELECT copy FROM run_copies").fetchall() == [("ds/x/b/ds",)]
    # Past the fixity interval of the old rows, within that of the others.
    result = run_cli("status", "--state", str(lab.state), "--fixity-interval", "365d",
                     "--format", "json")
    assert {c["copy"] for c in json.loads(result.stdout)["copies"]} == kept, result.stderr
    assert result.exit_code == 0, result.stdout
