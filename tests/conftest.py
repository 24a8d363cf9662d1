"""Shared test helpers: real trees in tmp dirs, inventories, and the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from threetwoone.cli import main
from threetwoone.reports.json import schema

#: A run in which any test is skipped fails (see noskip.py).
pytest_plugins = ["noskip"]

SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(
    schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


#: Fixtures that start a real server (sshd, XRootD, WsgiDAV, moto, Slurm): a test
#: that uses one is marked ``slow``.  ``pytest -m 'not slow'`` is then the inner
#: loop (the local and pure tests, well under a minute); the whole suite, which
#: ``scripts/test.sh`` and CI run, includes every one.
SERVER_FIXTURES = frozenset({
    "sshd_session", "sshd", "sshd_private", "xrootd_server", "xrootd_private",
    "wsgidav_server", "wsgidav_unprivileged_server", "wsgidav_private_factory",
    "moto_s3", "moto_s3_private", "slurm_cluster"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def validate_report(report: dict[str, Any]) -> None:
    """Every JSON report a test sees is checked against the shipped schema."""
    SCHEMA_VALIDATOR.validate(report)


#: ``{relative path: content}``; bytes paths allow names that are not UTF-8.
Tree = Mapping[str, bytes] | Mapping[bytes, bytes] | Mapping[str | bytes, bytes]


def write_tree(root: Path | str | bytes, files: Tree) -> None:
    """Create ``files`` ({relative path: content}) below ``root``; bytes paths
    allow names that are not UTF-8."""
    root_b = os.fsencode(root)
    for name, data in files.items():
        rel = os.fsencode(name)
        full = os.path.join(root_b, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)


def rot_in_place(path: Path | str, offset: int = 0) -> None:
    """Flip one byte of a file at ``offset``, keeping its size and mtime (bit
    rot): only reading the bytes can see it."""
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def refuse_to_open(monkeypatch: pytest.MonkeyPatch, folder: Path, name: str) -> None:
    """Opening the file ``name`` of ``folder`` fails with EACCES, as an unreadable
    file does: tests run as root in CI, and root reads every file."""
    from threetwoone import checksums
    from threetwoone.backends import localhash

    real_open = checksums.open_regular
    inode = folder.stat().st_ino

    def fake_open(path: str | bytes, dir_fd: int | None = None) -> tuple[int, os.stat_result]:
        if (os.fsdecode(path) == name and dir_fd is not None
                and os.fstat(dir_fd).st_ino == inode):
            raise PermissionError(13, "Permission denied")
        return real_open(path, dir_fd)

    monkeypatch.setattr(localhash, "open_regular", fake_open)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.stdout)
        validate_report(report)
        return report


class Lab:
    """A tmp folder with storage locations, an inventory and a state catalog."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state = tmp / "state" / "catalog.sqlite3"
        self.inventory = tmp / "inventory.yaml"
        self.locations: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, dict[str, Any]] = {}
        #: More top-level inventory keys (policy, transfer, ...), written every time.
        self.top: dict[str, Any] = {}

    def location(self, name: str, media: str = "disk", site: str = "site-a",
                 create: bool = True, **extra: Any) -> Path:
        root = self.tmp / "storage" / name
        if create:
            root.mkdir(parents=True, exist_ok=True)
        self.locations[name] = {"kind": "local", "root": str(root), "media": media,
                                "site": site, **extra}
        return root

    def dataset(self, name: str, copies: list[dict[str, Any]], **extra: Any) -> None:
        self.datasets[name] = {"copies": copies, **extra}

    def write(self, **top: Any) -> Path:
        doc = {"version": 1, "locations": self.locations, "datasets": self.datasets,
               **self.top, **top}
        self.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.inventory

    def audit(self, *args: str, write: bool = True) -> CliResult:
        if write:
            self.write()
        return run_cli("audit", str(self.inventory), "--state", str(self.state), *args)

    def audit_json(self, *args: str, write: bool = True) -> tuple[int, dict[str, Any]]:
        result = self.audit("--format", "json", *args, write=write)
        assert result.exit_code in (0, 1, 3), result.stderr
        return result.exit_code, result.json()

    def three_copies(self, files: Tree, name: str = "ds",
                     **extra: Any) -> tuple[Path, Path, Path]:
        """The classic 3-2-1 layout: primary on disk at site-a, a tape copy at
        site-a, a disk copy at site-b; every copy holds ``files``."""
        roots = (self.location("nas", "disk", "site-a"),
                 self.location("tape", "tape", "site-a"),
                 self.location("remote", "disk", "site-b"))
        for root in roots:
            write_tree(root / name, files)
        self.dataset(name, [{"location": "nas", "path": name, "primary": True},
                            {"location": "tape", "path": name},
                            {"location": "remote", "path": name}], **extra)
        return tuple(root / name for root in roots)  # type: ignore[return-value]


def run_cli(*args: str) -> CliResult:
    runner = CliRunner()
    result = runner.invoke(main, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_subprocess(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The installed CLI in a real process (for tracebacks, signals, stderr)."""
    return subprocess.run([sys.executable, "-m", "threetwoone", *args], capture_output=True,
                          text=True, timeout=120, **kwargs)


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


@pytest.fixture
def open_lab() -> Iterator[Lab]:
    """A Lab in a folder every account may enter (pytest's tmp_path is 0700 root),
    for scenarios run as an unprivileged user."""
    folder = Path(tempfile.mkdtemp(prefix="t321-open-"))
    folder.chmod(0o755)
    try:
        yield Lab(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def hand_over(root: Path) -> None:
    """Give ``root`` and everything below it to the unprivileged user."""
    if os.geteuid() != 0:
        return
    for folder, _dirs, names in os.walk(root):
        os.chown(folder, 65534, 65534)
        for name in names:
            os.chown(os.path.join(folder, name), 65534, 65534, follow_symlinks=False)


def run_unprivileged(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    """``threetwoone audit --format json`` as ``nobody`` (as root) or as is."""
    lab.write()
    hand_over(lab.tmp)
    prefix = (["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
              if os.geteuid() == 0 else [])
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "threetwoone", "audit", str(lab.inventory),
         "--state", str(lab.state), "--format", "json", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(lab.tmp)})
    assert proc.returncode in (0, 1, 3), proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    validate_report(report)
    return proc.returncode, report


def copy_by_location(report: dict[str, Any], dataset: str, location: str) -> dict[str, Any]:
    for ds in report["datasets"]:
        if ds["name"] == dataset:
            for copy in ds["copies"]:
                if copy["location"] == location:
                    return copy  # type: ignore[no-any-return]
    raise AssertionError(f"no copy {location} of {dataset} in the report")


def dataset_of(report: dict[str, Any], name: str) -> dict[str, Any]:
    for ds in report["datasets"]:
        if ds["name"] == name:
            return ds  # type: ignore[no-any-return]
    raise AssertionError(f"no dataset {name}")


def assert_unreadable_not_bit_rot(result: CliResult, location: str, path: str) -> None:
    """The copy on ``location`` is ``error`` (exit 3) with ``path`` its one
    unreadable file: never ``corrupt``, never called bit rot."""
    assert result.exit_code == 3, result.stdout
    copy = copy_by_location(result.json(), "ds", location)
    assert copy["state"] == "error"
    [problem] = copy["problems"]
    assert (problem["path"], problem["problem"]) == (path, "unreadable")
    assert copy["files"]["corrupt"] == 0 and "bit rot" not in result.stdout


def assert_counted_once(code: int, report: dict[str, Any], twin: str) -> None:
    """Dataset ``ds`` with a primary and two copies of which ``twin`` is the
    same storage as another: two copies count, so 3-2-1 fails."""
    ds = dataset_of(report, "ds")
    twin_copy = copy_by_location(report, "ds", twin)
    assert code == 1, ds
    assert ds["counts"]["copies"] == 2
    assert twin_copy["same_as"] and not twin_copy["counted"]
    assert any(twin in w and "counts once" in w for w in ds["warnings"])


def assert_manifest_unreadable(result: CliResult) -> None:
    """Dataset ``ds``'s producer manifest ``checksums.md5`` could not be read:
    its status is unknown (exit 3), never judged on part of the manifest."""
    assert result.exit_code == 3, result.stdout
    ds = dataset_of(result.json(), "ds")
    assert ds["status"] == "unknown"
    assert any("checksums.md5" in w and "could not be read" in w for w in ds["warnings"])
