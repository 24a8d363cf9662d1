"""The local backend against the backend contract (contract.py), on real folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.contract import BackendContract, DiskStorage, remove_tree
from threetwoone.backends import Backend
from threetwoone.backends.interface import Entry, EntryKind, WalkProblem
from threetwoone.inventory import Location

#: Lists a copy as an unprivileged account would: root reads every folder.
_WALK_SCRIPT = """
import json, os, sys
from threetwoone.backends import open_backend
from threetwoone.backends.interface import WalkProblem
from threetwoone.inventory import Location
backend = open_backend(Location("disk", "local", "disk", "here", {"root": sys.argv[1]}))
backend.connect()
for item in backend.walk(sys.argv[2]):
    kind = "problem" if isinstance(item, WalkProblem) else item.kind.value
    detail = item.detail if isinstance(item, WalkProblem) else item.size
    print(json.dumps([kind, os.fsencode(item.path).hex(), detail]))
"""


class LocalStorage(DiskStorage):
    """A folder on this machine's disk, enterable by every account."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def location(self, **settings: Any) -> Location:
        return Location(name="disk", kind="local", media="disk", site="here",
                        settings={"kind": "local", "root": str(self.root), **settings})

    def disk(self, path: str) -> bytes:
        return os.path.join(os.fsencode(self.root), os.fsencode(path))

    def backend_of(self, root: Path) -> Backend:
        return LocalStorage(root).backend()

    def walk_as_auditor(self, backend: Backend, path: str) -> list[Entry | WalkProblem]:
        if os.geteuid() != 0:
            return list(backend.walk(path))
        done = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             sys.executable, "-c", _WALK_SCRIPT, str(self.root), path],
            capture_output=True, text=True, timeout=60, check=True)
        items: list[Entry | WalkProblem] = []
        for line in done.stdout.splitlines():
            kind, hexpath, detail = json.loads(line)
            name = os.fsdecode(bytes.fromhex(hexpath))
            items.append(WalkProblem(name, detail) if kind == "problem"
                         else Entry(name, EntryKind(kind), detail))
        return items


class TestLocalContract(BackendContract):
    storage_kind = LocalStorage

    @pytest.fixture
    def storage(self) -> Iterator[LocalStorage]:
        root = Path(tempfile.mkdtemp(prefix="t321-contract-"))
        root.chmod(0o755)  # the unprivileged walk enters it
        storage = LocalStorage(root)
        yield storage
        storage.close()
        remove_tree(root)
