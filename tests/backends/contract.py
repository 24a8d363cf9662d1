"""The storage backend contract, as one suite every backend passes.

Modelled on rclone's ``fstests`` and fsspec's ``tests/abstract``: the tests are
written once, here, in :class:`BackendContract`; each backend's test module
subclasses it once per server variant (``TestLocalContract``,
``TestSFTPContract``, ...) and supplies one fixture, ``storage``: a
:class:`Storage` that makes copies on the real server and reaches behind the
backend's back to damage them.  From it the suite derives the fixtures the
tests use:

* ``backend``: a connected backend of the storage's location;
* ``make_tree(files)``: write ``{relative path: bytes}`` as a new copy and
  return its path (the one the backend's methods take);
* ``damage(path, relpath, how)``: change a file without the backend knowing
  (``how`` is one of :data:`DAMAGE`).

What a kind of storage cannot hold or do (S3 has no folders, links or names
that are not UTF-8; a WebDAV server shows no symlinks) is declared in
:class:`Capabilities`, which each contract subclass names through its
``storage_kind``.  Nothing is ever skipped: a test of a thing the storage
cannot hold is not made for that subclass at all (:func:`needs`, and the odd
names parametrised per subclass), and where not offering a thing has a
behaviour of its own (no server digests: every hash reads the bytes) that
behaviour is tested instead.  A missing server or tool fails the test with the
command that installs it.

The helpers at the top (:func:`listing`, :func:`files_of`, :func:`hash_all`,
:func:`copy_state`) are the ones the per-backend tests use too.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conftest import Tree, rot_in_place
from threetwoone.backends import Backend, open_backend
from threetwoone.backends.errors import CopyFailed
from threetwoone.backends.interface import (
    Entry,
    EntryKind,
    HashResult,
    NotAFolder,
    RootInfo,
    WalkProblem,
)
from threetwoone.checksums import FACTORIES, hash_bytes
from threetwoone.inventory import Location

#: ``{relative path: content}``; bytes paths allow names that are not UTF-8.
Files = Tree

#: What ``damage`` can do to a file behind the backend's back.
#: rot: one byte flipped in place, size and mtime kept (only a read sees it);
#: grow / shrink: bytes appended / cut; rewrite: other bytes of the same size
#: and a later mtime; remove: the file deleted.
DAMAGE = ("rot", "grow", "shrink", "rewrite", "remove")

#: Algorithms every backend is asked for: the default, and two that servers keep.
ALGORITHMS = ("xxh3_128", "md5", "sha256")


# -- helpers for every backend test ----------------------------------------------------


def listing(backend: Backend, path: str) -> tuple[list[Entry], list[WalkProblem]]:
    """A copy's walk: (entries of any kind, folders that could not be listed)."""
    entries: list[Entry] = []
    problems: list[WalkProblem] = []
    for item in backend.walk(path):
        if isinstance(item, WalkProblem):
            problems.append(item)
        else:
            entries.append(item)
    return entries, problems


def files_of(backend: Backend, path: str) -> dict[str, Entry]:
    """The regular files of a copy by path; a folder that cannot be listed fails the test."""
    entries, problems = listing(backend, path)
    assert not problems, problems
    return {e.path: e for e in entries if e.kind is EntryKind.FILE}


def hash_all(backend: Backend, path: str, algorithms: Sequence[str], *,
             entries: Sequence[Entry] | None = None, force_full: bool = False,
             workers: int = 1) -> dict[str, HashResult]:
    """Every file of a copy hashed (or ``entries``), checking that there is
    exactly one result per file."""
    todo = list(files_of(backend, path).values()) if entries is None else list(entries)
    results = list(backend.hash_files(path, todo, algorithms, force_full=force_full,
                                      workers=workers))
    assert Counter(r.path for r in results) == Counter(e.path for e in todo)
    return {r.path: r for r in results}


def expected_digests(files: Files, algorithms: Sequence[str] = ALGORITHMS
                     ) -> dict[str, dict[str, str]]:
    """What each file's digests must be, computed here from its bytes."""
    return {os.fsdecode(name): hash_bytes(data, algorithms) for name, data in files.items()}


def copy_state(backend: Backend, path: str, reference: Files,
               algorithms: Sequence[str], force_full: bool = False
               ) -> tuple[str, frozenset[str]]:
    """A copy's state from the backend's answers alone (missing, incomplete,
    corrupt, intact), and the methods its content was established by.  The CLI
    tests run the real auditor; this is the backend's share of it."""
    if backend.stat_root(path) is None:
        return "missing", frozenset()
    listed = files_of(backend, path)
    sizes = {os.fsdecode(name): len(data) for name, data in reference.items()}
    expected = expected_digests(reference, ALL_COMPUTABLE)
    present = [listed[name] for name in sorted(expected) if name in listed]
    results = hash_all(backend, path, algorithms, entries=present, force_full=force_full)
    corrupt = False
    for result in results.values():
        assert result.error is None, result
        assert result.digests, f"no digest for {result.path}"
        for algorithm, value in result.digests.items():
            corrupt |= value != expected[result.path][algorithm]
        corrupt |= result.size != sizes[result.path]
    state = ("corrupt" if corrupt else "incomplete" if len(present) < len(expected)
             else "intact")
    return state, frozenset(r.method for r in results.values())


#: Every algorithm the auditor can compute (a server digest is one of them).
ALL_COMPUTABLE = tuple(FACTORIES)


# -- what a storage is and can do --------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """What the storage behind a backend can hold and do.  A False is a declared
    gap: the tests that need it are not made for that storage, and only those."""

    #: Ids of :data:`ODD_NAMES` the storage cannot hold (S3 keys are UTF-8):
    #: no test has them.
    name_gaps: frozenset[str] = frozenset()
    #: Ids of :data:`ODD_NAMES` the storage holds (on its server's disk) but its
    #: server cannot serve (XRootD 5.5 cuts listed names at a newline): the
    #: contract checks that each is an error, never an intact file.
    unserved_names: frozenset[str] = frozenset()
    #: Symbolic links, listed as ``SYMLINK`` and never followed.
    symlinks: bool = True
    #: FIFOs (and sockets, devices), listed as ``SPECIAL`` and never opened.
    special_files: bool = True
    #: Folders of their own: an empty copy exists, a file is not a folder.
    folders: bool = True
    #: A folder the auditing account may not list.
    unlistable_folders: bool = True
    #: hash_files without ``force_full`` trusts checksums the server keeps.
    server_digests: bool = False


class Storage:
    """One kind of storage as the contract sees it: a backend of a location on a
    real server, and the means to make and damage copies there."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Strings that must never appear in anything a backend returns or raises.
    secrets: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._cleanups: list[Callable[[], object]] = []

    def location(self, **settings: Any) -> Location:
        raise NotImplementedError

    def backend(self, **settings: Any) -> Backend:
        """A connected backend of the storage's location (``settings`` added)."""
        backend = open_backend(self.location(**settings))
        backend.connect()
        return backend

    def tree(self, files: Files) -> str:
        raise NotImplementedError

    def damage(self, path: str, relpath: str | bytes, how: str) -> None:
        raise NotImplementedError

    def special(self, path: str, relpath: str, what: str) -> None:
        """Make ``relpath`` a symlink or FIFO (``what``: see ``SPECIALS``)."""
        raise NotImplementedError

    def lock(self, path: str, relpath: str) -> None:
        """Make the folder ``relpath`` unlistable to the auditing account."""
        raise NotImplementedError

    def walk_as_auditor(self, backend: Backend, path: str) -> list[Entry | WalkProblem]:
        """A walk as the account the audit runs as (where that is not this
        process's own: a local walk by root sees through every permission)."""
        return list(backend.walk(path))

    def big_copy(self, count: int) -> tuple[Backend, str]:
        """A backend and a copy of ``count`` empty files, 1,000 to a folder."""
        raise NotImplementedError

    def cleanup(self, action: Callable[[], object]) -> None:
        """Run ``action`` when the test is over."""
        self._cleanups.append(action)

    def close(self) -> None:
        """Undo what the storage made for one test (last made, first undone)."""
        while self._cleanups:
            self._cleanups.pop()()


_copies = iter(range(1, 1 << 62))


def fresh_name(stem: str = "copy") -> str:
    return f"{stem}-{next(_copies)}"


class DiskStorage(Storage):
    """Storage whose files are on this machine's disk (local folders, and the
    sshd, XRootD and WsgiDAV test servers): damaged and locked through the
    disk itself."""

    def disk(self, path: str) -> bytes:
        """Where the copy ``path`` is on the local disk."""
        raise NotImplementedError

    def after_write(self, path: str) -> None:
        """Let the server read what was written below the copy ``path``."""

    def tree(self, files: Files) -> str:
        path = fresh_name()
        write_files(self.disk(path), files)
        self.after_write(path)
        return path

    def damage(self, path: str, relpath: str | bytes, how: str) -> None:
        damage_file(os.path.join(self.disk(path), os.fsencode(relpath)), how)

    def special(self, path: str, relpath: str, what: str) -> None:
        full = os.path.join(self.disk(path), os.fsencode(relpath))
        if what == "fifo":
            os.mkfifo(full)
        else:
            os.symlink(SPECIALS[what], full)

    def lock(self, path: str, relpath: str) -> None:
        os.chmod(os.path.join(self.disk(path), os.fsencode(relpath)), 0)

    def big_copy(self, count: int) -> tuple[Backend, str]:
        """The files made in a RAM folder (a busy disk makes 100,000 files in
        minutes), served by :meth:`backend_of`."""
        root = ram_folder()
        self.cleanup(lambda: remove_tree(root))
        make_empty_files(root / "ds", count)
        return self.backend_of(root), "ds"

    def backend_of(self, root: Path) -> Backend:
        """A connected backend of a location whose root (on this disk) is ``root``."""
        raise NotImplementedError


def ram_folder() -> Path:
    """A new folder every account may enter, in RAM where there is a tmpfs."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    folder = Path(tempfile.mkdtemp(prefix="t321-contract-", dir=base))
    folder.chmod(0o755)
    return folder


def make_empty_files(root: Path, count: int) -> None:
    """``count`` empty files below ``root``, 1,000 to a folder."""
    for index in range(count):
        folder = root / f"d{index // 1000:03d}"
        if index % 1000 == 0:
            folder.mkdir(parents=True)
        os.close(os.open(folder / f"f{index:07d}.fastq.gz", os.O_CREAT | os.O_WRONLY, 0o644))


#: Symlinks the contract makes: what each points to.
SPECIALS = {
    "symlink to a file outside": "/etc/passwd",
    "symlink to a folder": "sub",
    "dangling symlink": "no-such-file",
    "symlink to itself": "loop",
    "fifo": "",
}


def write_files(root: bytes | str, files: Files) -> None:
    """``files`` below ``root`` (which is created, even for no files)."""
    root_b = os.fsencode(root)
    os.makedirs(root_b, exist_ok=True)
    for name, data in files.items():
        full = os.path.join(root_b, os.fsencode(name))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)


def damage_file(full: bytes | str, how: str) -> None:
    """Change a file on the local disk as ``how`` (one of :data:`DAMAGE`) says."""
    before = os.stat(full)
    if how == "remove":
        os.unlink(full)
        return
    if how == "rot":
        rot_in_place(os.fsdecode(full), before.st_size // 2)
        return
    with open(full, "r+b") as handle:
        data = handle.read()
        handle.seek(0)
        if how == "grow":
            handle.seek(len(data))
            handle.write(b"grown")
        elif how == "shrink":
            handle.truncate(len(data) // 2)
        elif how == "rewrite":
            handle.write(bytes(b ^ 0xFF for b in data))
        else:
            raise ValueError(how)
    # A later mtime, seen by storage that keeps whole seconds only.
    later = max(before.st_mtime_ns, time.time_ns()) + 5_000_000_000
    os.utime(full, ns=(before.st_atime_ns, later))


# -- the contract ------------------------------------------------------------------------

TREE: dict[str | bytes, bytes] = {
    "a.txt": b"hello\n",
    "a.b/z": b"sorts between a.txt and b.bin, or before a/ by bytes",
    "b.bin": bytes(range(256)) * 1200,
    "empty": b"",
    "sub/c.dat": b"c" * 10,
    "sub/deeper/still/d.txt": b"deep",
    "z/last.txt": b"z",
}

#: Names that trouble shells, URLs, XML, terminals and encodings, by id.
ODD_NAMES: dict[str, str | bytes] = {
    "space": "with space.txt",
    "unicode": "ünïcødé 名前/é.txt",
    "percent": "100%25 q%41.txt",
    "url-special": "#hash&amp;=+;@.txt",
    "question-mark": "why?.txt",
    "shell": "it's \"quoted\" $(touch x) `y`; -n.txt",
    "leading-dash": "-",
    "backslash": "back\\slash.txt",
    "255-bytes": "n" * 251 + ".txt",
    "255-bytes-multibyte": "é" * 125 + "12345",
    "newline": "new\nline.txt",
    "tab": "tab\there",
    "not-utf8": b"latin1-\xe9t\xe9.bin",
}


TestMethod = Callable[..., None]


def needs(*capabilities: str, offered: bool = True) -> Callable[[TestMethod], TestMethod]:
    """Make the test only for storage that offers every one of ``capabilities``
    (or, with ``offered=False``, for storage that offers none of them).  Where
    it does not apply the test does not exist: never a skipped test, which reads
    as "not tested"."""
    for name in capabilities:
        if name not in Capabilities.__dataclass_fields__:
            raise ValueError(f"no capability {name!r}")

    def mark(test: TestMethod) -> TestMethod:
        test.needs = (capabilities, offered)  # type: ignore[attr-defined]
        return test
    return mark


def applies(test: object, capabilities: Capabilities) -> bool:
    """Whether a contract test (see :func:`needs`) is made for ``capabilities``."""
    wanted, offered = getattr(test, "needs", ((), True))
    return all(bool(getattr(capabilities, name)) == offered for name in wanted)


class BackendContract:
    """The tests.  A subclass names its ``storage_kind`` and provides the
    ``storage`` fixture (an instance of it)."""

    #: The kind of storage a subclass tests: its :class:`Capabilities` decide,
    #: when the subclass is made, which tests it has.
    storage_kind: ClassVar[type[Storage]] = Storage

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        capabilities = cls.storage_kind.capabilities
        for name in dir(cls):
            if not name.startswith("test_"):
                continue
            # The test as written (a parent may have removed it for its storage).
            test = next((k.__dict__[name] for k in cls.__mro__
                         if k.__dict__.get(name) is not None), None)
            if test is not None:
                # None: pytest collects no test of that name in this class.
                setattr(cls, name, test if applies(test, capabilities) else None)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """The odd names as parameters: ``odd``, those the storage holds and
        serves; ``unserved``, those it holds but cannot serve."""
        capabilities = self.storage_kind.capabilities
        if "odd" in metafunc.fixturenames:
            gaps = capabilities.name_gaps | capabilities.unserved_names
            metafunc.parametrize("odd", [odd for odd in ODD_NAMES if odd not in gaps])
        if "unserved" in metafunc.fixturenames:  # never empty: see needs()
            metafunc.parametrize("unserved", sorted(capabilities.unserved_names))

    # -- fixtures -----------------------------------------------------------------------
    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("a contract subclass provides the storage fixture")

    @pytest.fixture
    def backend(self, storage: Storage) -> Iterator[Backend]:
        # The tests were chosen by storage_kind's capabilities: the storage is one.
        assert type(storage) is self.storage_kind, (type(storage), self.storage_kind)
        backend = storage.backend()
        yield backend
        backend.close()

    @pytest.fixture
    def make_tree(self, storage: Storage) -> Callable[[Files], str]:
        return storage.tree

    @pytest.fixture
    def damage(self, storage: Storage) -> Callable[[str, str | bytes, str], None]:
        return storage.damage

    # -- listing --------------------------------------------------------------------------
    def test_walk_lists_every_file_once_with_size_and_mtime(
            self, backend: Backend, make_tree: Callable[[Files], str]) -> None:
        before = time.time_ns()
        path = make_tree(TREE)
        after = time.time_ns()
        entries, problems = listing(backend, path)
        assert problems == []
        assert Counter(e.path for e in entries) == Counter(os.fsdecode(n) for n in TREE)
        for entry in entries:
            assert entry.kind is EntryKind.FILE
            assert entry.size == len(TREE[entry.path])
            # Whole seconds on some servers; the server's clock is this machine's.
            assert entry.mtime_ns is not None
            assert before - 2 * 10**9 <= entry.mtime_ns <= after + 2 * 10**9

    def test_walk_order_is_stable(self, backend: Backend,
                                  make_tree: Callable[[Files], str]) -> None:
        """Each walk of an unchanged copy gives the same sequence (the auditor
        files entries by path and needs no particular order)."""
        tree: dict[str | bytes, bytes] = {
            **TREE, **{f"many/{i % 7}/f{i:03d}": b"%d" % i for i in range(60)}}
        path = make_tree(tree)
        first = [e.path for e in backend.walk(path)]
        assert len(first) == len(TREE) + 60
        assert [e.path for e in backend.walk(path)] == first

    def test_copy_paths_are_normalised(self, backend: Backend,
                                       make_tree: Callable[[Files], str]) -> None:
        path = make_tree({"x/y.txt": b"y", "z": b"z"})
        expected = sorted(files_of(backend, path))
        assert expected == ["x/y.txt", "z"]
        for spelling in (f"{path}/", f"./{path}", f"/{path}/"):
            assert sorted(files_of(backend, spelling)) == expected, spelling
        assert sorted(files_of(backend, f"{path}/x")) == ["y.txt"]

    def test_odd_names_round_trip(self, backend: Backend,
                                  make_tree: Callable[[Files], str], odd: str) -> None:
        """Listed as they are, hashed and read under the same name (``odd``: each
        of :data:`ODD_NAMES` but the storage's gaps)."""
        name = ODD_NAMES[odd]
        data = b"content of " + os.fsencode(name)
        path = make_tree({name: data, "plain.txt": b"plain"})
        shown = os.fsdecode(name)
        listed = files_of(backend, path)
        assert set(listed) == {shown, "plain.txt"}
        results = hash_all(backend, path, ["xxh3_128"], force_full=True)
        assert results[shown].error is None, results[shown]
        assert dict(results[shown].digests) == hash_bytes(data, ["xxh3_128"])
        with backend.open_read(path, shown) as handle:
            assert handle.read() == data

    @needs("unserved_names")
    def test_a_name_the_server_cannot_serve_is_an_error_never_intact(
            self, backend: Backend, make_tree: Callable[[Files], str],
            unserved: str) -> None:
        """A file on the server's disk whose name the server garbles, cuts or
        refuses is never dropped in silence nor hashed under another name: the
        copy fails (``CopyFailed``), or the walk or the hash of it reports an
        error."""
        name = ODD_NAMES[unserved]
        files = {name: b"content", "plain.txt": b"plain"}
        path = make_tree(files)
        try:
            entries, problems = listing(backend, path)
            listed = [e for e in entries if e.kind is EntryKind.FILE]
            results = list(backend.hash_files(path, listed, ["xxh3_128"], force_full=True))
        except CopyFailed as failed:
            assert str(failed) and "\n" not in str(failed)
            return
        errors = {r.path for r in results if r.error}
        assert problems or errors, f"{unserved} dropped in silence: {entries}"
        for result in results:  # a name that is not the file's: never a digest
            if result.path not in {os.fsdecode(n) for n in files}:
                assert result.path in errors, result
        assert os.fsdecode(name) not in {r.path for r in results if not r.error}

    @needs("symlinks", "special_files")
    def test_links_and_special_files_are_listed_never_followed(
            self, storage: Storage, backend: Backend,
            make_tree: Callable[[Files], str]) -> None:
        path = make_tree({"sub/inside.txt": b"i", "file.txt": b"f"})
        for name, what in (("out", "symlink to a file outside"),
                           ("to-folder", "symlink to a folder"),
                           ("dangling", "dangling symlink"), ("loop", "symlink to itself"),
                           ("fifo", "fifo")):
            storage.special(path, name, what)
        entries, problems = listing(backend, path)
        assert problems == []
        assert sorted((e.path, e.kind) for e in entries) == [
            ("dangling", EntryKind.SYMLINK), ("fifo", EntryKind.SPECIAL),
            ("file.txt", EntryKind.FILE), ("loop", EntryKind.SYMLINK),
            ("out", EntryKind.SYMLINK), ("sub/inside.txt", EntryKind.FILE),
            ("to-folder", EntryKind.SYMLINK)]

    @needs("unlistable_folders")
    def test_a_folder_that_cannot_be_listed_is_a_walk_problem(
            self, storage: Storage, backend: Backend,
            make_tree: Callable[[Files], str]) -> None:
        path = make_tree({"ok.txt": b"ok", "locked/secret.txt": b"s", "z/after.txt": b"a"})
        storage.lock(path, "locked")
        items = storage.walk_as_auditor(backend, path)
        problems = [i for i in items if isinstance(i, WalkProblem)]
        assert [p.path for p in problems] == ["locked"]
        assert problems[0].detail and "\n" not in problems[0].detail
        assert sorted(i.path for i in items if isinstance(i, Entry)) == ["ok.txt",
                                                                         "z/after.txt"]

    @needs("folders")
    def test_an_empty_copy_exists_and_lists_nothing(
            self, backend: Backend, make_tree: Callable[[Files], str]) -> None:
        path = make_tree({})
        assert backend.stat_root(path) is not None
        assert list(backend.walk(path)) == []

    # -- the root -----------------------------------------------------------------------
    def test_stat_root(self, storage: Storage, backend: Backend,
                       make_tree: Callable[[Files], str]) -> None:
        path = make_tree({"f": b"x", "sub/g": b"y"})
        other = make_tree({"f": b"x", "sub/g": b"y"})
        root = backend.stat_root(path)
        assert isinstance(root, RootInfo) and root.identity
        assert backend.stat_root(f"./{path}/") == root
        again = storage.backend()
        try:
            assert again.stat_root(path) == root  # stable from run to run
        finally:
            again.close()
        other_root = backend.stat_root(other)
        assert other_root is not None and not set(root.keys()) & set(other_root.keys())
        assert backend.stat_root(fresh_name("never-made")) is None
        if storage.capabilities.folders:
            with pytest.raises(NotAFolder):
                backend.stat_root(f"{path}/f")
        else:  # a key without a key below it is no copy
            assert backend.stat_root(f"{path}/f") is None

    def test_storage_identity(self, storage: Storage, backend: Backend,
                              make_tree: Callable[[Files], str]) -> None:
        """What a cached verification is bound to: the same for the same copy,
        run after run; another for another copy; never a secret."""
        path, other = make_tree({"f": b"x"}), make_tree({"f": b"x"})
        root, other_root = backend.stat_root(path), backend.stat_root(other)
        assert root is not None and other_root is not None
        facts = backend.storage_identity(path, root)
        assert facts and all(isinstance(k, str) and isinstance(v, str)
                             for k, v in facts.items())
        assert backend.storage_identity(path, root) == facts
        again = storage.backend()
        try:
            assert again.storage_identity(path, again.stat_root(path)) == facts  # type: ignore[arg-type]
        finally:
            again.close()
        assert backend.storage_identity(other, other_root) != facts
        shown = repr(facts) + repr(root)
        for secret in storage.secrets:
            assert secret not in shown

    # -- reading ------------------------------------------------------------------------
    def test_open_read(self, backend: Backend, make_tree: Callable[[Files], str]) -> None:
        big = os.urandom(3 * 1024 * 1024 + 17)
        path = make_tree({"big.bin": big, "sub/small.txt": b"small", "empty": b""})
        with backend.open_read(path, "big.bin") as handle:
            first = handle.read(1000)
            assert first + handle.read() == big
        with backend.open_read(path, "sub/small.txt") as handle:
            assert handle.read() == b"small"
        with backend.open_read(path, "empty") as handle:
            assert handle.read() == b""
        with pytest.raises(FileNotFoundError):
            backend.open_read(path, "no-such-file").close()

    # -- hashing --------------------------------------------------------------------------
    @pytest.mark.parametrize("workers", [1, 4])
    def test_hash_files_gives_one_result_per_file(
            self, backend: Backend, make_tree: Callable[[Files], str],
            damage: Callable[[str, str | bytes, str], None], workers: int) -> None:
        files: dict[str | bytes, bytes] = {
            f"d{i % 5}/f{i:03d}": os.urandom(100 + i * 37) for i in range(40)}
        files["big.bin"] = os.urandom(2 * 1024 * 1024 + 5)
        files["empty"] = b""
        path = make_tree(files)
        entries = list(files_of(backend, path).values())
        damage(path, "d3/f003", "remove")
        progress: list[tuple[int, int]] = []
        results = list(backend.hash_files(
            path, entries, ["xxh3_128", "md5"], workers=workers, force_full=True,
            progress=lambda count, size: progress.append((count, size))))
        assert Counter(r.path for r in results) == Counter(e.path for e in entries)
        expected = expected_digests(files, ["xxh3_128", "md5"])
        good = [r for r in results if r.error is None]
        assert [r.path for r in results if r.error] == ["d3/f003"]
        for result in good:
            assert result.method == "full"
            assert dict(result.digests) == expected[result.path]
            assert result.size == len(files[result.path])
        assert sum(count for count, _ in progress) == len(good)
        assert sum(size for _, size in progress) == sum(r.size for r in good)
        assert list(backend.hash_files(path, [], ["xxh3_128"], workers=workers)) == []

    @pytest.mark.parametrize("force_full", [False, True], ids=["cheapest", "full"])
    @pytest.mark.parametrize("how", ["grow", "shrink", "rewrite", "remove"])
    def test_a_file_changed_after_listing_is_an_error_not_corruption(
            self, backend: Backend, make_tree: Callable[[Files], str],
            damage: Callable[[str, str | bytes, str], None], how: str,
            force_full: bool) -> None:
        """Whatever the file holds now is not what was listed: unreadable (the
        copy is ``error``, looked at again next run), never a digest that would
        call the listed file corrupt."""
        files: dict[str | bytes, bytes] = {"same.txt": b"unchanged",
                                           "victim.bin": os.urandom(300_000)}
        path = make_tree(files)
        entries = list(files_of(backend, path).values())
        algorithms = ["xxh3_128", *backend.digest_algorithms()]
        # Servers that keep checksums compute them on the first request: ask once
        # before the change, as an earlier audit would have.
        hash_all(backend, path, algorithms)
        damage(path, "victim.bin", how)
        results = hash_all(backend, path, algorithms, entries=entries, force_full=force_full)
        victim = results["victim.bin"]
        assert victim.error, victim
        assert not victim.digests, victim
        assert results["same.txt"].error is None
        assert all(v == expected_digests(files, ALL_COMPUTABLE)["same.txt"][a]
                   for a, v in results["same.txt"].digests.items())

    def test_rot_in_place_is_found_by_a_full_read(
            self, backend: Backend, make_tree: Callable[[Files], str],
            damage: Callable[[str, str | bytes, str], None]) -> None:
        files: dict[str | bytes, bytes] = {"victim.bin": os.urandom(300_000)}
        path = make_tree(files)
        algorithms = ["xxh3_128", *backend.digest_algorithms()]
        hash_all(backend, path, algorithms)  # checksums kept by the server, if any
        damage(path, "victim.bin", "rot")
        (result,) = hash_all(backend, path, algorithms, force_full=True).values()
        assert result.error is None and result.method == "full"
        assert result.size == len(files["victim.bin"])
        expected = expected_digests(files, algorithms)["victim.bin"]
        assert result.digests and all(expected[a] != v for a, v in result.digests.items())

    def test_server_digests_and_full_reads_agree(
            self, storage: Storage, backend: Backend,
            make_tree: Callable[[Files], str]) -> None:
        offered = backend.digest_algorithms()
        assert set(offered) <= set(FACTORIES), "a digest the auditor cannot compute"
        assert bool(offered) == storage.capabilities.server_digests
        assert backend.default_workers() >= 1
        path = make_tree(TREE)
        algorithms = ["xxh3_128", *offered]
        expected = expected_digests(TREE, algorithms)
        cheap = hash_all(backend, path, algorithms)
        full = hash_all(backend, path, algorithms, force_full=True)
        for name, result in cheap.items():
            assert result.error is None and full[name].error is None
            assert result.method == ("digest" if offered else "full")
            assert full[name].method == "full"
            assert result.digests and dict(full[name].digests) == expected[name]
            assert all(expected[name][a] == v for a, v in result.digests.items())
            assert result.size == full[name].size == len(TREE[name])

    @needs("server_digests")
    def test_force_download_setting(self, storage: Storage,
                                    make_tree: Callable[[Files], str]) -> None:
        """A location's ``force_download: true`` reads every byte, always."""
        path = make_tree(TREE)
        backend = storage.backend(force_download=True)
        try:
            assert backend.digest_algorithms() == ()
            methods = {r.method for r in hash_all(backend, path, ["xxh3_128", "md5"]).values()}
        finally:
            backend.close()
        assert methods == {"full"}

    @needs("server_digests", offered=False)
    def test_without_server_digests_the_cheapest_hash_reads_every_byte(
            self, backend: Backend, make_tree: Callable[[Files], str],
            damage: Callable[[str, str | bytes, str], None]) -> None:
        """Storage that keeps no checksums offers none, and ``hash_files``
        without ``force_full`` reads the bytes: rot in place (size and mtime
        kept) is found by the cheapest hash, as ``force_download`` would."""
        assert backend.digest_algorithms() == ()
        path = make_tree(TREE)
        damage(path, "b.bin", "rot")
        algorithms = ["xxh3_128", "md5"]
        expected = expected_digests(TREE, algorithms)
        results = hash_all(backend, path, algorithms)
        assert {r.method for r in results.values()} == {"full"}
        for name, result in results.items():
            assert result.error is None, result
            assert result.size == len(TREE[name]) and set(result.digests) == set(algorithms)
            if name == "b.bin":
                assert all(expected[name][a] != v for a, v in result.digests.items())
            else:
                assert dict(result.digests) == expected[name]

    def test_copy_states(self, backend: Backend, make_tree: Callable[[Files], str],
                         damage: Callable[[str, str | bytes, str], None]) -> None:
        """The backend's answers tell intact, corrupt, incomplete and missing
        copies apart, by server digest and by reading alike."""
        algorithms = ["xxh3_128", *backend.digest_algorithms()]
        intact = make_tree(TREE)
        corrupt = make_tree(TREE)
        damage(corrupt, "b.bin", "rewrite")
        incomplete = make_tree({k: v for k, v in TREE.items() if k != "a.txt"})
        for force_full in (False, True):
            method = frozenset({"digest" if len(algorithms) > 1 and not force_full
                                else "full"})
            assert copy_state(backend, intact, TREE, algorithms, force_full) == (
                "intact", method)
            assert copy_state(backend, corrupt, TREE, algorithms, force_full) == (
                "corrupt", method)
            assert copy_state(backend, incomplete, TREE, algorithms, force_full) == (
                "incomplete", method)
            assert copy_state(backend, fresh_name("never-made"), TREE, algorithms,
                              force_full) == ("missing", frozenset())

    # -- scale ----------------------------------------------------------------------------
    @pytest.mark.slow
    def test_a_listing_of_100000_entries_in_flat_memory(self, storage: Storage) -> None:
        """Walking 100,000 entries keeps no more memory than walking 50,000:
        the walk yields entries as it lists them (reading ahead a bounded
        number: the SFTP lister holds up to some 46,000 names).  Holding them
        would keep at least two memory blocks each (a tuple and its path); the
        bound is 0.3 block per extra entry.  See :func:`walk_growth` for how it
        is measured."""
        growth = {}
        for count in (50_000, 100_000):
            backend, path = storage.big_copy(count)
            try:
                listed, growth[count] = walk_growth(backend, path)
            finally:
                backend.close()
            assert listed == count
        more = growth[100_000] - growth[50_000]
        assert more < 50_000 * 0.3, (
            f"{more:,} more memory blocks at the peak for 50,000 more entries ({growth})")


def walk_growth(backend: Backend, path: str) -> tuple[int, int]:
    """(entries walked, most memory blocks live above the start while walking).

    ``sys.getallocatedblocks`` (Python's small objects, entries and their paths
    among them) is read every 100 entries: tracing every allocation
    (tracemalloc) made a local walk of 100,000 files 12 times slower."""
    gc.collect()
    start = peak = sys.getallocatedblocks()
    count = 0
    for _entry in backend.walk(path):
        count += 1
        if count % 100 == 0:
            peak = max(peak, sys.getallocatedblocks())
    return count, max(peak, sys.getallocatedblocks()) - start


def remove_tree(root: str | Path) -> None:
    """Remove a test's storage folder, folders the test locked included."""
    for folder, dirs, _files in os.walk(root):
        for name in dirs:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                os.chmod(full, 0o755)
    shutil.rmtree(root, ignore_errors=True)
