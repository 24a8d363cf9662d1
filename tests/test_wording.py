"""Words a reader meets in the table: counted nouns, the majority view, column
names that say what they count."""

from __future__ import annotations

from conftest import Lab, write_tree


def test_one_file_is_not_files(lab: Lab) -> None:
    nas = lab.location("nas", "disk", "a")
    tape = lab.location("tape", "tape", "a")
    remote = lab.location("remote", "disk", "b")
    for root in (nas, tape, remote):
        write_tree(root / "ds", {"only.fq": b"ACGT"})
    write_tree(tape / "ds", {"stray.tmp": b"x"})
    lab.dataset("ds", [{"location": "nas", "path": "ds"}, {"location": "tape", "path": "ds"},
                       {"location": "remote", "path": "ds"}])
    out = lab.audit().stdout
    assert "reference recorded from the primary copy nas:ds (1 file);" in out
    assert "copy tape:ds has 1 file not in the reference" in out
    assert "1 dataset: 1 pass, 0 fail, 0 unknown" in out
    assert "file(s)" not in out and "1 files" not in out and "1 datasets" not in out


def test_majority_view_with_one_other_copy(lab: Lab) -> None:
    nas = lab.location("nas", "disk", "a")
    usb = lab.location("usb", "usb-disk", "a")
    for root in (nas, usb):
        write_tree(root / "ds", {"a.fq": b"ACGT" * 10})
    lab.dataset("ds", [{"location": "nas", "path": "ds"}, {"location": "usb", "path": "ds"}])
    assert lab.audit().exit_code == 1  # 2 copies, 1 site: fails, but records the reference
    (usb / "ds" / "a.fq").write_bytes(b"ACGA" * 10)
    out = lab.audit().stdout
    assert "a.fq: nas:ds matches the reference; usb:ds differs" in out
    assert "every other copy" not in out


def test_majority_view_with_several_other_copies(lab: Lab) -> None:
    _nas, tape, remote = lab.three_copies({"a.fq": b"ACGT" * 10})
    assert lab.audit().exit_code == 0
    (tape / "a.fq").write_bytes(b"ACGA" * 10)
    (remote / "a.fq").write_bytes(b"ACGC" * 10)
    out = lab.audit().stdout
    assert ("a.fq: nas:ds matches the reference; the others (tape:ds, remote:ds) each "
            "differ in their own way") in out


def test_copies_column_says_it_counts_counted_copies(lab: Lab) -> None:
    lab.three_copies({"a.fq": b"ACGT"})
    header = lab.audit().stdout.splitlines()[0].split()
    assert header[:5] == ["dataset", "policy", "status", "counted", "copies"]
