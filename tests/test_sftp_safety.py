"""The SFTP backend reads nothing outside a copy, whatever is swapped for a
symlink while the audit runs: end to end through the CLI, against a real sshd.

SFTP version 3 cannot open a file without following symlinks, and ``xargs -0
TOOL --`` on the host follows them too.  A file (or a folder on its way) that is
a symlink when it is read is found afterwards: its path must still be a regular
file of the listed size and mtime, at the same place below the copy's real
folder (LSTAT and REALPATH after the read), else it is unreadable."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, rot_in_place, write_tree
from servers.sshd import SSHHome, SSHServer
from threetwoone.backends.sftp import SFTPBackend, lister

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

pytest_plugins = ["servers.sftp_plugin"]

RIGHT = os.urandom(300_000)
FILES = {"run/data.bin": RIGHT, "run/notes.txt": b"lane 1\n", "README.txt": b"run 1\n"}


def sftp_lab(lab: Lab, server: SSHServer, *, streamed: bool) -> Path:
    """A local primary and a local tape copy at site-a, an SFTP copy at
    site-b (its host hashes with xxhsum, or ``streamed``: internal-sftp only)
    whose first audit passes.  Return the SFTP copy's folder on the host."""
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "tape", "site-a")
    remote = server.data_dir(f"swap-{os.urandom(4).hex()}")
    for root in (nas, usb, remote):
        write_tree(root / "ds", FILES)
    lab.locations["backup"] = {
        "kind": "sftp", "host": "127.0.0.1",
        "port": server.sftp_only_port if streamed else server.port, "user": server.user,
        "root": str(remote), "identity_file": str(server.client_key), "media": "disk",
        "site": "site-b", "timeout": 10}
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "usb", "path": "ds"},
                       {"location": "backup", "path": "ds"}])
    code, report = lab.audit_json()
    assert code == 0, [(d["violations"], d["warnings"]) for d in report["datasets"]]
    return remote / "ds"


def outside_twin(server: SSHServer, copy: Path) -> Path:
    """A folder outside the copy holding what the copy held when it was
    intact: the same bytes under the same names, sizes and mtimes."""
    twin = server.data_dir(f"elsewhere-{os.urandom(4).hex()}") / "ds"
    shutil.copytree(copy, twin)  # copy2: mtimes kept
    return twin


def swap_for_link(path: Path, target: Path, graveyard: Path) -> None:
    """Move ``path`` aside and put a symlink to ``target`` in its place."""
    path.rename(graveyard / f"{path.name}-{os.urandom(4).hex()}")
    path.symlink_to(target)


def swap_after_listing(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> list[str]:
    """Run ``swap()`` once, when the SFTP copy has been listed and before any
    of its files is read: the deterministic moment a racing process would hit."""
    walk = SFTPBackend.walk
    done: list[str] = []

    def swapping(self: SFTPBackend, path: str) -> Iterator[Any]:
        yield from walk(self, path)
        if not done:
            swap()
            done.append(path)

    monkeypatch.setattr(SFTPBackend, "walk", swapping)
    return done


@pytest.mark.parametrize("streamed", [False, True], ids=["host hashes", "streamed"])
@pytest.mark.parametrize("swapped", ["file", "folder", "copy folder"])
def test_a_path_swapped_for_a_symlink_after_listing_is_not_trusted(
        lab: Lab, sshd: SSHServer, trusted_home: SSHHome, monkeypatch: pytest.MonkeyPatch,
        streamed: bool, swapped: str) -> None:
    """The copy's data.bin rots (size and mtime kept); a folder outside the
    copy holds the right bytes.  Swapping the file, its folder or the copy's
    own folder for a symlink there between listing and reading must not make
    the copy intact: that would vouch for bytes that are not in the copy."""
    copy = sftp_lab(lab, sshd, streamed=streamed)
    twin = outside_twin(sshd, copy)
    rot_in_place(copy / "run" / "data.bin", 1000)
    graveyard = copy.parent

    def swap() -> None:
        if swapped == "file":
            swap_for_link(copy / "run" / "data.bin", twin / "run" / "data.bin", graveyard)
        elif swapped == "folder":
            swap_for_link(copy / "run", twin / "run", graveyard)
        else:
            swap_for_link(copy, twin, graveyard.parent)

    done = swap_after_listing(monkeypatch, swap)
    code, report = lab.audit_json("--verify", "full")
    backup = copy_by_location(report, "ds", "backup")
    assert done == ["ds"]
    assert (code, backup["state"]) == (3, "error"), backup
    assert backup["files"]["corrupt"] == 0 and backup["verified_files"] < 3
    if swapped == "copy folder":
        assert "is no longer the folder that was listed" in backup["detail"], backup
        return
    unreadable = {p["path"]: p["detail"] for p in backup["problems"]}
    expected = ("it or a folder on its path was replaced by a symlink while being read "
                "(what that points to is not the copy's)")
    if swapped == "folder":
        assert unreadable == {"run/data.bin": expected, "run/notes.txt": expected}
    else:
        assert unreadable == {"run/data.bin": expected}


@pytest.mark.parametrize("streamed", [False, True], ids=["host hashes", "streamed"])
def test_a_folder_swapped_for_a_symlink_while_listing_is_not_listed(
        lab: Lab, sshd: SSHServer, trusted_home: SSHHome, monkeypatch: pytest.MonkeyPatch,
        streamed: bool) -> None:
    """The copy lost run/data.bin; a folder outside it holds the whole run/.
    Swapping run/ for a symlink there after the copy's top folder was listed
    and before run/ is must not list the files outside as the copy's: with a
    nightly ``--verify changed`` their sizes and mtimes would match the
    catalog and nothing would be read."""
    copy = sftp_lab(lab, sshd, streamed=streamed)
    twin = outside_twin(sshd, copy)
    (copy / "run" / "data.bin").unlink()
    monkeypatch.setattr(lister, "LIST_ROUND_FOLDERS", 1)  # one folder per round
    rounds: list[str] = []
    real_round = lister._Lister._round

    def round_(self: lister._Lister, wanted: str) -> None:
        rounds.append(wanted)
        if len(rounds) == 2 and self.top.endswith(b"/ds"):  # ds/ listed, run/ not yet
            swap_for_link(copy / "run", twin / "run", copy.parent)
        real_round(self, wanted)

    monkeypatch.setattr(lister._Lister, "_round", round_)
    code, report = lab.audit_json("--verify", "changed")
    backup = copy_by_location(report, "ds", "backup")
    assert (copy / "run").is_symlink()
    assert (code, backup["state"]) == (3, "error"), backup
    assert [(p["path"], p["problem"], p["detail"]) for p in backup["problems"]] == [
        ("run", "unreadable", "folder could not be listed: replaced by a symlink while "
                              "being listed (what it points to is not the copy's)")]
