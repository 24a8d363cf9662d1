"""End-to-end audits of local copies through the real CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    Lab,
    copy_by_location,
    dataset_of,
    refuse_to_open,
    run_subprocess,
    write_tree,
)

FILES = {
    "run1/sample_R1.fastq.gz": os.urandom(70_000),
    "run1/sample_R2.fastq.gz": os.urandom(50_000),
    "README.txt": b"sequencing run 1\n",
}


def md5_manifest(files: dict[str, bytes]) -> bytes:
    return b"".join(f"{hashlib.md5(d).hexdigest()}  {n}\n".encode() for n, d in files.items())


def test_three_intact_copies_pass(lab: Lab) -> None:
    lab.three_copies(FILES)
    code, report = lab.audit_json()
    assert code == 0
    ds = dataset_of(report, "ds")
    assert ds["status"] == "pass"
    assert ds["counts"] == {"copies": 3, "media": 2, "offsite": 1, "sites": 2}
    for copy in ds["copies"]:
        assert copy["state"] == "intact" and copy["counted"] and copy["verification"] == "full"
        assert copy["files"]["present"] == 3
    assert copy_by_location(report, "ds", "remote")["offsite"] is True
    assert copy_by_location(report, "ds", "tape")["offsite"] is False


def test_second_audit_uses_recorded_reference(lab: Lab) -> None:
    lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    code, report = lab.audit_json()
    assert code == 0
    assert dataset_of(report, "ds")["reference"] == "primary"
    # The first audit said it recorded a reference; the second does not repeat it.
    assert not any("reference recorded" in w for w in dataset_of(report, "ds")["warnings"])


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "delete", "extra"])
def test_damage_to_one_copy(lab: Lab, damage: str) -> None:
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0  # records the reference
    target = tape / "run1" / "sample_R1.fastq.gz"
    if damage == "flip_byte":
        data = bytearray(target.read_bytes())
        data[12345] ^= 0x01
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        with open(target, "r+b") as handle:
            handle.truncate(1000)
    elif damage == "delete":
        target.unlink()
    else:
        (tape / "run1" / "stray.tmp").write_bytes(b"x")
    code, report = lab.audit_json()
    copy = copy_by_location(report, "ds", "tape")
    expected_state = {"flip_byte": "corrupt", "truncate": "corrupt", "delete": "incomplete",
                      "extra": "intact"}[damage]
    assert copy["state"] == expected_state
    ds = dataset_of(report, "ds")
    if damage == "extra":
        assert code == 0 and ds["status"] == "pass"
        assert copy["files"]["extra"] == 1
        assert any("not in the reference" in w for w in ds["warnings"])
    else:
        assert code == 1 and ds["status"] == "fail"
        assert not copy["counted"]
        problem = copy["problems"][0]
        assert problem["path"] == "run1/sample_R1.fastq.gz"
        assert problem["problem"] == ("missing" if damage == "delete" else "corrupt")
    if damage == "truncate":
        assert "size 1000 bytes" in copy["problems"][0]["detail"]


def test_same_size_same_mtime_change_caught_by_manifest(lab: Lab) -> None:
    _nas, tape, _ = lab.three_copies({**FILES, "checksums.md5": md5_manifest(FILES)},
                                    checksums={"file": "checksums.md5", "algorithm": "md5"})
    target = tape / "run1" / "sample_R2.fastq.gz"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[0] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    code, report = lab.audit_json()
    assert code == 1
    copy = copy_by_location(report, "ds", "tape")
    assert copy["state"] == "corrupt"
    assert copy["problems"][0]["detail"].startswith("md5 ")
    assert dataset_of(report, "ds")["reference"] == "manifest"
    assert copy_by_location(report, "ds", "nas")["state"] == "intact"


def test_manifest_also_judges_the_primary(lab: Lab) -> None:
    nas, _, _ = lab.three_copies({**FILES, "checksums.md5": md5_manifest(FILES)},
                                 checksums={"file": "checksums.md5", "algorithm": "md5"})
    (nas / "README.txt").write_bytes(b"edited by hand\n")
    code, report = lab.audit_json()
    assert code == 1
    assert copy_by_location(report, "ds", "nas")["state"] == "corrupt"


def test_missing_copy_and_unreachable_location(lab: Lab) -> None:
    _nas, _tape, remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    shutil.rmtree(remote)
    code, report = lab.audit_json()
    assert code == 1
    assert copy_by_location(report, "ds", "remote")["state"] == "missing"
    # Now the whole location root is gone, as an unmounted disk: unreachable, exit 3.
    write_tree(remote, FILES)
    shutil.rmtree(lab.tmp / "storage" / "remote")
    code, report = lab.audit_json()
    assert code == 3
    copy = copy_by_location(report, "ds", "remote")
    assert copy["state"] == "unreachable"
    assert copy["detail"] == "location remote is unreachable (see locations)"
    [remote_location] = [loc for loc in report["locations"] if loc["name"] == "remote"]
    assert remote_location["state"] == "unreachable"
    assert "does not exist" in remote_location["detail"]
    assert dataset_of(report, "ds")["status"] == "unknown"


def test_unreachable_cannot_save_a_failing_dataset(lab: Lab) -> None:
    # Only two copies declared: even if the unreachable one were intact, 3 is not met.
    nas = lab.location("nas", "disk", "a")
    lab.location("gone", "tape", "b", create=False)
    write_tree(nas / "ds", FILES)
    lab.dataset("ds", [{"location": "nas", "path": "ds"}, {"location": "gone", "path": "ds"}])
    code, report = lab.audit_json()
    assert code == 1
    assert dataset_of(report, "ds")["status"] == "fail"


def test_unreadable_file_via_fault(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as root in CI, and root reads every file: inject EACCES at open()."""
    _nas, tape, _ = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    refuse_to_open(monkeypatch, tape, "README.txt")
    code, report = lab.audit_json()
    assert code == 3
    copy = copy_by_location(report, "ds", "tape")
    assert copy["state"] == "error"
    assert copy["problems"] == [{"path": "README.txt", "problem": "unreadable",
                                 "detail": "Permission denied"}]
    assert dataset_of(report, "ds")["status"] == "unknown"


def test_symlinked_copy_of_the_primary_counts_once(lab: Lab) -> None:
    nas = lab.location("nas", "disk", "a")
    lab.location("tape", "tape", "a")
    remote = lab.location("remote", "disk", "b")
    write_tree(nas / "ds", FILES)
    write_tree(remote / "ds", FILES)
    (lab.tmp / "storage" / "tape" / "ds").symlink_to(nas / "ds")
    lab.dataset("ds", [{"location": "nas", "path": "ds"}, {"location": "tape", "path": "ds"},
                       {"location": "remote", "path": "ds"}])
    code, report = lab.audit_json()
    assert code == 1
    ds = dataset_of(report, "ds")
    tape = copy_by_location(report, "ds", "tape")
    assert tape["same_as"] == "nas:ds" and not tape["counted"]
    assert ds["counts"]["copies"] == 2
    assert any("same storage" in w and "counts once" in w for w in ds["warnings"])


def test_same_path_declared_twice_counts_once(lab: Lab) -> None:
    lab.three_copies(FILES)
    lab.datasets["ds"]["copies"].append({"location": "remote", "path": "ds/"})
    _code, report = lab.audit_json()
    assert dataset_of(report, "ds")["counts"]["copies"] == 3
    assert sum(1 for c in dataset_of(report, "ds")["copies"] if c["counted"]) == 3


def test_fifo_and_symlink_inside_a_copy(lab: Lab) -> None:
    _nas, tape, _ = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    os.mkfifo(tape / "run1" / "pipe")
    (tape / "run1" / "link").symlink_to("/etc/passwd")
    # A FIFO where the reference expects a file: must not hang, and is not that file.
    os.unlink(tape / "README.txt")
    os.mkfifo(tape / "README.txt")
    code, report = lab.audit_json()
    assert code == 1
    copy = copy_by_location(report, "ds", "tape")
    assert copy["state"] == "incomplete"
    problems = {p["path"]: p for p in copy["problems"]}
    assert "not opened" in problems["README.txt"]["detail"]
    assert problems["run1/pipe"]["problem"] == "extra"
    assert "symlink" in problems["run1/link"]["detail"]


def test_symlink_loop_and_unlistable_folder_do_not_hang(lab: Lab) -> None:
    _nas, tape, _ = lab.three_copies(FILES)
    (tape / "loop").symlink_to(tape)
    (tape / "a").symlink_to(tape / "b")
    (tape / "b").symlink_to(tape / "a")
    _code, report = lab.audit_json()
    copy = copy_by_location(report, "ds", "tape")
    assert copy["state"] == "intact"
    assert copy["files"]["extra"] == 3


def test_odd_names_end_to_end(lab: Lab) -> None:
    odd: dict[str | bytes, bytes] = {
        b"bad\xff\xfename.fastq": b"not utf-8 name",
        "new\nline.txt": b"newline",
        "back\\slash and space.txt": b"backslash",
        "-dash $(touch pwned) 'q'.txt": b"shell",
    }
    _nas, tape, remote = lab.three_copies(odd)
    assert lab.audit_json()[0] == 0
    (tape / os.fsdecode(b"bad\xff\xfename.fastq")).write_bytes(b"NOT utf-8 name")
    os.unlink(remote / "new\nline.txt")
    result = lab.audit("--format", "json")
    report = result.json()
    assert result.exit_code == 1
    tape_copy = copy_by_location(report, "ds", "tape")
    assert tape_copy["problems"][0]["path"] == "bad\\xff\\xfename.fastq"
    import base64
    assert base64.b64decode(tape_copy["problems"][0]["path_base64"]) == b"bad\xff\xfename.fastq"
    remote_copy = copy_by_location(report, "ds", "remote")
    assert remote_copy["problems"][0]["path"] == "new\\nline.txt"
    assert not (lab.tmp / "pwned").exists()
    # The table puts every name on one line.
    table = lab.audit().stdout
    assert "bad\\xff\\xfename.fastq" in table and "new\\nline.txt" in table


def test_odd_names_in_a_manifest(lab: Lab) -> None:
    files: dict[str | bytes, bytes] = {"new\nline.txt": b"a", "back\\slash.txt": b"b",
                                       b"latin1-\xe9.txt": b"c"}
    manifest = b""
    for name, data in files.items():
        raw = os.fsencode(name)
        escaped = raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
        prefix = b"\\" if escaped != raw else b""
        manifest += prefix + hashlib.md5(data).hexdigest().encode() + b" *" + escaped + b"\n"
    files["checksums.md5"] = manifest
    lab.three_copies(files, checksums={"file": "checksums.md5", "algorithm": "md5"})
    code, report = lab.audit_json()
    assert code == 0, report
    # The three files the manifest names, and the manifest itself (recorded).
    assert all(c["files"]["expected"] == 4 for c in dataset_of(report, "ds")["copies"])
    assert dataset_of(report, "ds")["reference_files"] == {"manifests": 1, "covered": 3,
                                                           "recorded": 1}


def test_empty_primary_on_first_audit_is_not_a_pass(lab: Lab) -> None:
    lab.three_copies({})
    for name in ("nas", "tape", "remote"):
        (lab.tmp / "storage" / name / "ds").mkdir(exist_ok=True)
    code, report = lab.audit_json()
    assert code == 3
    primary = copy_by_location(report, "ds", "nas")
    assert primary["state"] == "error" and "empty reference" in primary["detail"]
    assert dataset_of(report, "ds")["status"] == "unknown"
    # And nothing was recorded: a later audit with data makes the reference then.
    write_tree(lab.tmp / "storage" / "nas" / "ds", FILES)
    code, report = lab.audit_json()
    assert dataset_of(report, "ds")["reference"] == "recorded"  # recorded by this run


def test_audit_never_writes_to_the_data(lab: Lab) -> None:
    roots = lab.three_copies(FILES)

    def snapshot() -> dict[str, tuple[int, int, int, bytes]]:
        out = {}
        for root in roots:
            for dirpath, dirnames, filenames in os.walk(root):
                for name in dirnames + filenames:
                    path = os.path.join(dirpath, name)
                    st = os.lstat(path)
                    content = Path(path).read_bytes() if os.path.isfile(path) else b""
                    out[path] = (st.st_mode, st.st_mtime_ns, st.st_size, content)
        return out

    before = snapshot()
    lab.audit_json()
    lab.audit_json("-j", "2")
    assert snapshot() == before


@pytest.mark.slow
def test_parallel_workers_give_the_same_verdicts(lab: Lab) -> None:
    many = {f"f{i:04d}.bin": os.urandom(i * 37 % 5000) for i in range(600)}
    _, tape, _ = lab.three_copies(many)
    assert lab.audit_json("-j", "3")[0] == 0
    (tape / "f0123.bin").write_bytes(b"changed")
    serial_code, serial = lab.audit_json()
    parallel_code, parallel = lab.audit_json("-j", "4")
    assert serial_code == parallel_code == 1

    def states(report: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
        return [(c["location"], c["state"], sorted(p["path"] for p in c["problems"]))
                for c in dataset_of(report, "ds")["copies"]]

    assert states(serial) == states(parallel)
    assert states(parallel)[1] == ("tape", "corrupt", ["f0123.bin"])


def test_exclude_globs(lab: Lab) -> None:
    nas, _tape, _remote = lab.three_copies(FILES, exclude=["*.tmp", "scratch/*"])
    write_tree(nas, {"scratch/big.bam": b"x", "run1/partial.tmp": b"y"})
    code, report = lab.audit_json()
    assert code == 0
    assert copy_by_location(report, "ds", "nas")["files"]["expected"] == 3


def test_quiet_prints_nothing_when_all_pass(lab: Lab) -> None:
    lab.three_copies(FILES)
    result = lab.audit("-q")
    assert result.exit_code == 0 and result.stdout == ""
    (lab.tmp / "storage" / "tape" / "ds" / "README.txt").write_bytes(b"x")
    result = lab.audit("-q")
    assert result.exit_code == 1
    assert "README.txt" in result.stdout and "FAIL" in result.stdout


def test_output_file_written_atomically(lab: Lab, tmp_path: Path) -> None:
    lab.three_copies(FILES)
    out = tmp_path / "report.json"
    out.write_text("old report")
    result = lab.audit("--format", "json", "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    import json

    from conftest import validate_report
    validate_report(json.loads(out.read_text()))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".threetwoone-")]


def test_dataset_selection(lab: Lab) -> None:
    lab.three_copies(FILES, name="a")
    lab.three_copies(FILES, name="b")
    _code, report = lab.audit_json("-d", "b")
    assert [d["name"] for d in report["datasets"]] == ["b"]
    result = lab.audit("-d", "nope")
    assert result.exit_code == 2 and "unknown dataset" in result.stderr


def test_no_traceback_on_unexpected_error_without_debug(lab: Lab, tmp_path: Path) -> None:
    lab.three_copies(FILES)
    lab.write()
    (tmp_path / "statedir").write_text("a file where a folder should be")
    proc = run_subprocess("audit", str(lab.inventory), "--state",
                          str(tmp_path / "statedir" / "x.sqlite3"))
    assert proc.returncode == 5
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("threetwoone: state catalog")


def test_module_entry_point_and_version() -> None:
    proc = run_subprocess("--version")
    assert proc.returncode == 0 and "threetwoone" in proc.stdout


@pytest.mark.slow
def test_problem_list_is_capped_but_counts_are_exact(lab: Lab) -> None:
    from threetwoone.results import PROBLEMS_KEPT
    many = {f"d/f{i:05d}": b"x" for i in range(PROBLEMS_KEPT + 250)}
    _, tape, _ = lab.three_copies(many)
    assert lab.audit_json()[0] == 0
    shutil.rmtree(tape / "d")
    code, report = lab.audit_json()
    assert code == 1
    copy = copy_by_location(report, "ds", "tape")
    assert copy["files"]["missing"] == PROBLEMS_KEPT + 250
    assert len(copy["problems"]) == PROBLEMS_KEPT and copy["problems_omitted"] == 250
    from threetwoone.reports.common import PROBLEMS_SHOWN
    assert f"... and {PROBLEMS_KEPT + 250 - PROBLEMS_SHOWN} more" in lab.audit().stdout


def test_file_changed_while_read_is_unreadable_not_corrupt(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real change in the middle of a read: after the first chunk of one file,
    append to it (the hook only picks the moment; the file really changes)."""
    from threetwoone import checksums

    big = {"big.bin": os.urandom(3 * checksums.BUFFER_SIZE), "small.txt": b"s"}
    _, tape, _ = lab.three_copies(big)
    assert lab.audit_json()[0] == 0
    victim = tape / "big.bin"
    victim_ino = victim.stat().st_ino
    real_read = checksums._readinto
    grown: list[bool] = []

    def read_then_grow(fd: int, view: memoryview) -> int:
        count = real_read(fd, view)
        if not grown and count and os.fstat(fd).st_ino == victim_ino:
            grown.append(True)
            with open(victim, "ab") as handle:
                handle.write(b"appended by a running rsync")
        return count

    monkeypatch.setattr(checksums, "_readinto", read_then_grow)
    code, report = lab.audit_json("--verify", "full")
    assert code == 3
    copy = copy_by_location(report, "ds", "tape")
    assert copy["state"] == "error"
    assert copy["problems"] == [{"path": "big.bin", "problem": "unreadable",
                                 "detail": "changed while being read"}]
    assert grown == [True]


def test_progress_line_only_on_a_terminal() -> None:
    import io

    from threetwoone.progress import ProgressLine

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    line = ProgressLine(term, interval=0)
    progress = line.as_progress()
    progress.copy("ds", "nas:ds", 3, 10 * 1024 * 1024)
    progress(3, 5 * 1024 * 1024)
    assert "ds nas:ds  3/3 files  5.0 MiB/10.0 MiB (50%)" in term.getvalue()
    line.clear()
    assert term.getvalue().endswith("\r\x1b[K")
    quiet = ProgressLine(None)
    assert quiet.as_progress().callback is None
