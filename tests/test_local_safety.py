"""The local backend reads nothing outside a copy and changes nothing, whatever
is swapped, however deep the tree: end to end through the CLI."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, write_tree
from threetwoone.backends import folders
from threetwoone.backends.local import LocalBackend

RIGHT = os.urandom(40_000)
FILES = {"run1/data.bin": RIGHT, "README.txt": b"run 1\n"}


def swap_before_hashing(monkeypatch: pytest.MonkeyPatch, location: str,
                        swap: Any) -> list[str]:
    """Run ``swap()`` once, after ``location``'s copy was listed and just before
    its files are hashed: the deterministic moment a racing process would hit."""
    real = LocalBackend.hash_files
    done: list[str] = []

    def swapping(self: LocalBackend, path: str, entries: Sequence[Any],
                 algorithms: Sequence[str], **kwargs: Any) -> Iterator[Any]:
        if self.name == location and not done:
            swap()
            done.append(path)
        return real(self, path, entries, algorithms, **kwargs)

    monkeypatch.setattr(LocalBackend, "hash_files", swapping)
    return done


def test_folder_swapped_for_a_symlink_after_listing_is_not_followed(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy's run1/ rots; a folder outside the copy holds the right bytes.
    Swapping run1/ for a symlink to it between listing and hashing must not
    make the copy intact: that would vouch for bytes that are not in the copy."""
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    (tape / "run1" / "data.bin").write_bytes(bytes(b ^ 1 for b in RIGHT))
    outside = lab.tmp / "elsewhere" / "run1"
    write_tree(outside, {"data.bin": RIGHT})

    def swap() -> None:
        (tape / "run1").rename(lab.tmp / "rotten-run1")
        (tape / "run1").symlink_to(outside)

    swapped = swap_before_hashing(monkeypatch, "tape", swap)
    code, report = lab.audit_json("--verify", "full")
    assert swapped == ["ds"]
    copy = copy_by_location(report, "ds", "tape")
    assert code == 3, copy
    assert copy["state"] == "error"
    assert copy["problems"] == [{
        "path": "run1/data.bin", "problem": "unreadable",
        "detail": "folder 'run1' was replaced by a symlink (not followed)"}]


def test_copy_root_swapped_after_listing_is_not_read(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same one level up: the copy's own folder replaced by a link to a
    folder elsewhere holding the right bytes."""
    _nas, tape, _remote = lab.three_copies(FILES)
    assert lab.audit_json()[0] == 0
    (tape / "run1" / "data.bin").write_bytes(bytes(b ^ 1 for b in RIGHT))
    outside = lab.tmp / "elsewhere" / "ds"
    write_tree(outside, FILES)

    def swap() -> None:
        tape.rename(lab.tmp / "rotten-ds")
        tape.symlink_to(outside)

    swapped = swap_before_hashing(monkeypatch, "tape", swap)
    code, report = lab.audit_json("--verify", "full")
    assert swapped == ["ds"]
    copy = copy_by_location(report, "ds", "tape")
    assert code == 3, copy
    assert copy["state"] == "error"
    assert "is no longer the folder that was listed" in copy["detail"]


# -- paths longer than PATH_MAX ------------------------------------------------------

#: 24 folders of 200 bytes: about 4,800 bytes below the copy root, past Linux's
#: PATH_MAX (4096), which no single system call may be handed.
DEEP = [f"{i:02d}" + "d" * 198 for i in range(24)]


def write_deep(root: Path, parts: list[str], name: str, data: bytes) -> None:
    """Create parts/name below ``root`` one folder at a time (by descriptor: the
    whole path is too long for any path-based call)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=fd)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
        try:
            os.write(out, data)
        finally:
            os.close(out)
    finally:
        os.close(fd)


@pytest.mark.parametrize("held", [None, 3])
def test_paths_longer_than_path_max_are_audited(lab: Lab, monkeypatch: pytest.MonkeyPatch,
                                                held: int | None) -> None:
    """``held=3``: deeper than the folder descriptors a chain keeps open, so
    shallower folders are dropped and reopened; no descriptor leaks."""
    if held is not None:
        monkeypatch.setattr(folders, "MAX_HELD", held)
    open_fds = len(os.listdir("/proc/self/fd"))
    roots = lab.three_copies({"README.txt": b"top\n", "z/last.txt": b"z"})
    for root in roots:
        write_deep(root, DEEP, "deep.bin", RIGHT)
        # Back up to a folder half way down after the deepest: with held=3 it
        # was dropped on the way down and must be reopened.
        write_deep(root, DEEP[:12], "mid.txt", b"mid")
        write_deep(root, [*DEEP[:12], "side"], "side.txt", b"side")
    deep_path = "/".join([*DEEP, "deep.bin"])
    assert len(os.fsencode(os.path.join(roots[0], deep_path))) > 4096
    code, report = lab.audit_json()
    assert code == 0, report
    for location in ("nas", "tape", "remote"):
        copy = copy_by_location(report, "ds", location)
        assert copy["state"] == "intact" and copy["files"]["present"] == 5
    write_deep(roots[1], DEEP, "deep.bin", bytes(b ^ 1 for b in RIGHT))
    code, report = lab.audit_json("--verify", "full")
    assert code == 1
    copy = copy_by_location(report, "ds", "tape")
    assert copy["state"] == "corrupt"
    assert [(p["path"], p["problem"]) for p in copy["problems"]] == [(deep_path, "corrupt")]
    assert len(os.listdir("/proc/self/fd")) == open_fds
