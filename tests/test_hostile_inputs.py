"""Hostile and unlucky inputs: every one ends in one clear line and the right exit
code, in bounded time and memory, with nothing replaced on disk and no secret shown."""

from __future__ import annotations

import base64
import json
import os
import resource
import shlex
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Lab, copy_by_location, dataset_of, run_cli, run_subprocess, write_tree
from leaks import make_secret, run_with_secret


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder every account may enter (pytest's tmp_path is 0700), for runs
    as an unprivileged account."""
    folder = Path(tempfile.mkdtemp(prefix="t321-hostile-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def dav_location(auth: dict[str, str]) -> dict[str, object]:
    return {"kind": "webdav", "url": "https://dav.example.org/project", "auth": auth,
            "media": "object", "site": "nsc"}


@pytest.mark.slow
@pytest.mark.parametrize(("auth", "key"), [("bearer", "token_env"),
                                           ("basic", "password_env")])
def test_a_token_pasted_into_an_env_key_is_refused_without_echoing_it(
        lab: Lab, auth: str, key: str) -> None:
    # A JWT or a macaroon: dots, dashes, '=' or '/' make it no variable name.
    secret = f"eyJ{make_secret()}.{make_secret(length=20)}-x="
    lab.location("nas")
    lab.dataset("ds", [{"location": "nas", "path": "ds"}])
    lab.locations["dav"] = dav_location({"type": auth, "username": "alice", key: secret}
                                        if auth == "basic" else {"type": auth, key: secret})
    lab.write()
    for command in (["validate", str(lab.inventory)],
                    ["audit", str(lab.inventory), "--state", str(lab.state)]):
        for run in run_with_secret(command, secret, scan=[lab.tmp], ignore=[lab.inventory]):
            assert run.returncode == 4, run.stderr
            assert f"locations.dav.auth.{key}: must be the name of an environment " \
                   "variable" in run.stderr
    assert not lab.state.exists()


def test_a_valid_env_name_still_validates(lab: Lab) -> None:
    lab.location("nas")
    lab.dataset("ds", [{"location": "nas", "path": "ds"}])
    lab.locations["dav"] = dav_location({"type": "bearer", "token_env": "_SWESTORE_TOKEN2"})
    result = run_cli("validate", str(lab.write()))
    assert result.exit_code == 0, result.stderr


# -- YAML bounds ---------------------------------------------------------------

BILLION_LAUGHS = """\
version: 1
lol0: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
lol1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
lol2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
lol3: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
lol4: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
lol5: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
lol6: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
lol7: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
lol8: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
locations: *i
datasets: {}
"""


MINIMAL = """\
version: 1
locations:
  nas: {kind: local, root: /srv/nas, media: disk, site: a}
datasets:
  ds:
    description: DESC
    copies: [{location: nas, path: ds}]
"""


def limited_memory() -> None:
    """In the child: 1 GiB of address space. Expanding the aliases above needs
    tens of GiB, so without a bound the run ends in MemoryError (exit 5)."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def validate_in_process(path: Path, *extra: str) -> tuple[int, str]:
    """``threetwoone validate`` in a real process with bounded memory."""
    run = run_subprocess("validate", str(path), *extra, preexec_fn=limited_memory)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, run.stdout + run.stderr


def test_billion_laughs_ends_at_once_with_exit_4(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 900
    code, out = validate_in_process(path)
    assert code == 4, out
    assert f"{path}:" in out and "expands to more than 1,000,000 values" in out


def test_the_same_bounds_hold_for_a_policy_file(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS.replace("version: 1\n", "name: x\n"))
    (tmp_path / "inventory.yaml").write_text(
        MINIMAL.replace("version: 1\n", "version: 1\npolicy: bomb.yaml\n"))
    code, out = validate_in_process(tmp_path / "inventory.yaml")
    assert code == 4, out
    assert f"{tmp_path / 'bomb.yaml'}:" in out and "expands to more than" in out


@pytest.mark.parametrize(("description", "message"), [
    ("[" + ", ".join(["*x"] * 10_001) + "]", "more than 10,000 aliases"),
    ("[" * 65 + "]" * 65, "nested deeper than the limit of 64 levels"),
    ("[" * 100_000, "nest"),   # libyaml's own nesting limit, or ours
    ("[" * 60 + "*deep" + "]" * 60,   # 60 levels, and the alias adds 5
     "nested deeper than the limit of 64 levels"),
    ("9" * 5000, "a number of more than 30 digits is out of range"),
    ("&r [1, *r]", "alias *r refers to a mapping or list that contains it"),
    ("*nowhere", "alias *nowhere refers to no anchor defined before it"),
    ("!!python/object/apply:os.system ['true']",
     "YAML tag !!python/object/apply:os.system on a list is not supported"),
    ("2024-13-45", "invalid timestamp value"),
])
def test_each_bound_and_bad_scalar_exits_4_with_the_line(tmp_path: Path, description: str,
                                                         message: str) -> None:
    text = MINIMAL.replace("version: 1\n", "version: 1\nanchors: [&x 1, &deep [[[[[1]]]]]]\n")
    path = tmp_path / "inventory.yaml"
    path.write_text(text.replace("DESC", description))
    code, out = validate_in_process(path)
    assert code == 4, out
    assert f"{path}:" in out and message in out, out


POLICY = "name: lab\nrequire: {copies: 1}\nattested: [backups are tested]\n"

#: (file, text replaced, tagged text, message): a tag on a mapping, a list or a
#: value, in an inventory or a policy file, is refused with its line.
TAGGED = [
    ("inventory", "locations:", "locations: !!python/object:os.system",
     "YAML tag !!python/object:os.system on a mapping"),
    ("inventory", "DESC", "!!set {a: null, b: null}", "YAML tag !!set on a mapping"),
    ("inventory", "DESC", "!!omap [a: 1]", "YAML tag !!omap on a list"),
    ("inventory", "copies: [", "copies: !custom [", "YAML tag !custom on a list"),
    ("inventory", "DESC", "!!str {text: x}", "YAML tag !!str on a mapping"),
    ("inventory", "DESC", "!!binary aGVsbG8=", "YAML tag !!binary on a value"),
    ("inventory", "DESC", "!custom text", "YAML tag !custom on a value"),
    ("policy", "require: {", "require: !!python/object/new:dict {",
     "YAML tag !!python/object/new:dict on a mapping"),
    ("policy", "[backups are tested]", "!!set {a: null}", "YAML tag !!set on a mapping"),
    ("policy", "attested: [", "attested: !custom [", "YAML tag !custom on a list"),
]


@pytest.mark.parametrize(("where", "old", "tagged", "message"), TAGGED)
def test_a_yaml_tag_on_anything_is_refused_with_its_line(
        tmp_path: Path, where: str, old: str, tagged: str, message: str) -> None:
    texts = {"inventory": MINIMAL.replace("version: 1\n", "version: 1\npolicy: lab.yaml\n"),
             "policy": POLICY}
    assert old in texts[where]
    texts[where] = texts[where].replace(old, tagged, 1)
    paths = {"inventory": tmp_path / "inventory.yaml", "policy": tmp_path / "lab.yaml"}
    for name, text in texts.items():
        paths[name].write_text(text)
    code, out = validate_in_process(paths["inventory"])
    line = next(n for n, text in enumerate(texts[where].splitlines(), 1) if "!" in text)
    assert code == 4, out
    [said] = out.strip().splitlines()  # one line
    assert said.startswith(f"threetwoone: {paths[where]}:{line}: "), said
    assert f"{message} is not supported" in said and said.endswith("remove it"), said


def test_files_over_the_size_limit_are_not_read(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    with open(path, "wb") as handle:
        handle.write(MINIMAL.encode())
        handle.truncate(8 * 1024 * 1024 + 1)  # sparse: no need to write 8 MiB
    code, out = validate_in_process(path)
    assert code == 4
    assert f"{path}: is 8.0 MiB, larger than the limit of 8.0 MiB" in out


# -- not a regular file ----------------------------------------------------------

def make_special(path: Path, kind: str) -> Path:
    """Put a file that is not a regular one at ``path``: ``fifo``, ``socket``,
    ``directory``, ``device`` (what /dev/null is: as root, replacing it by a
    regular file breaks the machine) or ``link:TARGET``."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind.startswith("link:"):
        path.symlink_to(kind[len("link:"):])
    else:
        raise AssertionError(kind)
    return path


def special_file(tmp_path: Path, kind: str) -> Path:
    if kind == "zero":
        return Path("/dev/zero")
    return make_special(tmp_path / "inventory.yaml", kind)


@pytest.mark.parametrize(("kind", "words"), [
    ("fifo", "is a FIFO (named pipe), not a regular file"),
    ("socket", "is a socket, not a regular file"),
    ("directory", "is a directory, not a regular file"),
    ("zero", "is a character device, not a regular file"),
])
@pytest.mark.slow
def test_an_inventory_that_is_not_a_regular_file_exits_4(tmp_path: Path, kind: str,
                                                         words: str) -> None:
    path = special_file(tmp_path, kind)
    state = tmp_path / "state" / "catalog.sqlite3"
    for args in (["validate", str(path)], ["audit", str(path), "--state", str(state)],
                 ["status", str(path), "--state", str(state)]):
        # A real process, with a timeout: a FIFO opened for reading would block.
        run = run_subprocess(*args, preexec_fn=limited_memory)
        assert run.returncode == 4, run.stderr
        assert f"threetwoone: {path}: {words}\n" == run.stderr
    assert not state.parent.exists()


def test_a_policy_file_that_is_a_fifo_exits_4(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "lab.yaml")
    (tmp_path / "inventory.yaml").write_text(MINIMAL.replace("version: 1\n",
                                                             "version: 1\npolicy: lab.yaml\n"))
    code, out = validate_in_process(tmp_path / "inventory.yaml")
    assert code == 4 and f"{tmp_path / 'lab.yaml'}: is a FIFO" in out


# -- values ----------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    (("path: ds}", 'path: "d\\0s"}'),
     "7: datasets.ds.copies[0].path: the value contains a NUL character"),
    (("ds:\n", '"d\\0s":\n'), "5: datasets: a key contains a NUL character"),
    (("version: 1", "version: true"), "1: version: unsupported inventory version true"),
    (("version: 1", "version: 1.0"), "1: version: unsupported inventory version 1.0"),
    (("root: /srv/nas", "root: off"),
     "3: locations.nas.root: must be a non-empty string (YAML reads the unquoted off as "
     "the boolean false; write 'off' in quotes if you mean the text)"),
    (("site: a", "site: 2024"),
     "3: locations.nas.site: must be a non-empty string (YAML reads the unquoted 2024 as a "
     "number; write '2024' in quotes if you mean the text)"),
    (("  ds:\n", "  1:\n"),
     "5: datasets.1: a dataset name must be text (YAML reads the unquoted 1 as a number; "
     "write '1' in quotes if you mean the text)"),
    (("  nas: {", "  yes: {"), "3: locations.True: a location name must be text (YAML "
     "reads the unquoted yes as the boolean true"),
])
def test_values_yaml_misreads_are_refused_with_a_hint(tmp_path: Path,
                                                      change: tuple[str, str],
                                                      message: str) -> None:
    path = tmp_path / "inventory.yaml"
    assert change[0] in MINIMAL
    path.write_text(MINIMAL.replace(change[0], change[1], 1).replace("DESC", "x"))
    state = tmp_path / "state.sqlite3"
    for args in (["validate", str(path)], ["audit", str(path), "--state", str(state)]):
        result = run_cli(*args)
        assert result.exit_code == 4, result.stderr
        assert f"{path}:{message}" in result.stderr
    assert not state.exists()


def test_keys_1_and_quoted_1_do_not_collapse_into_one_dataset(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(MINIMAL.replace("DESC", "x") + textwrap.indent(textwrap.dedent("""\
        1: {copies: [{location: nas, path: one}]}
        "1": {copies: [{location: nas, path: other}]}
        """), "  "))
    result = run_cli("validate", str(path))
    assert result.exit_code == 4
    assert f"{path}:8: datasets.1: a dataset name must be text" in result.stderr


def test_a_nul_byte_in_a_copy_path_never_reaches_the_audit(lab: Lab) -> None:
    lab.three_copies({"a.txt": b"a"})
    lab.datasets["ds"]["copies"][1]["path"] = "ds\0evil"
    result = lab.audit()
    assert result.exit_code == 4, result.stderr
    assert "datasets.ds.copies[1].path: the value contains a NUL character" in result.stderr


# -- policy paths ----------------------------------------------------------------

STRICT = "name: lab\nrequire: {copies: 4}\n"
LOOSE = "name: lab\nrequire: {copies: 1}\n"


@pytest.mark.slow
def test_a_policy_file_resolves_against_the_inventory_folder_only(lab: Lab,
                                                                 tmp_path: Path) -> None:
    lab.three_copies({"a.txt": b"a"})
    lab.write(policy="policies/lab.yaml")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "lab.yaml").write_text(STRICT)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "policies").mkdir(parents=True)
    (elsewhere / "policies" / "lab.yaml").write_text(LOOSE)
    args = ("audit", str(lab.inventory), "--state", str(lab.state))
    codes = {str(cwd): run_subprocess(*args, cwd=cwd).returncode
             for cwd in (tmp_path, elsewhere, Path("/"))}
    assert set(codes.values()) == {1}, codes   # three copies, the lab policy wants four
    # Without the file next to the inventory, the one in the working directory is not used.
    (tmp_path / "policies" / "lab.yaml").unlink()
    run = run_subprocess("validate", str(lab.inventory), cwd=elsewhere)
    assert run.returncode == 4
    assert f"no file {tmp_path / 'policies' / 'lab.yaml'}" in run.stderr


def test_policy_on_the_command_line_resolves_against_the_working_directory(
        lab: Lab, tmp_path: Path) -> None:
    lab.three_copies({"a.txt": b"a"})
    lab.write()
    (tmp_path / "lab.yaml").write_text(STRICT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "lab.yaml").write_text(LOOSE)
    args = ("audit", str(lab.inventory), "--state", str(lab.state), "--policy", "lab.yaml")
    assert run_subprocess(*args, cwd=elsewhere).returncode == 0
    assert run_subprocess(*args, cwd=tmp_path).returncode == 1


# -- display -------------------------------------------------------------------

def test_c1_controls_and_line_separators_in_names_are_escaped(lab: Lab) -> None:
    names = {"csi\x9b31mred": "csi\\u009b31mred", "nel\x85line": "nel\\u0085line",
             "ls\u2028ps\u2029x": "ls\\u2028ps\\u2029x",
             "evil\u202etxt.exe": "evil\\u202etxt.exe", "ok-åäö": "ok-åäö"}
    _nas, tape, _remote = lab.three_copies({name: b"data" for name in names})
    for name in names:
        (tape / name).unlink()
    table = lab.audit("--format", "table")
    assert table.exit_code == 1
    code, report = lab.audit_json()
    assert code == 1
    problems = {p["path"]: p for p in copy_by_location(report, "ds", "tape")["problems"]}
    for name, shown in names.items():
        assert f"missing: {shown}" in table.stdout
        assert shown in problems
        if shown != name:
            assert base64.b64decode(problems[shown]["path_base64"]) == name.encode()
    for char in "\x85\x9b\u2028\u2029\u202e":
        assert char not in table.stdout and char not in json.dumps(report, ensure_ascii=False)


@pytest.mark.parametrize(("name", "shown"), [
    ("line\u2028break", "line\\u2028break"), ("esc\x1b[2J", "esc\\x1b[2J"),
    ("c1\x9b31m", "c1\\u009b31m"), ("rtl\u202eexe", "rtl\\u202eexe"),
    ("new\nline", "new\\nline")])
def test_dataset_names_are_shown_on_one_line_escaped(lab: Lab, name: str,
                                                     shown: str) -> None:
    lab.three_copies({"a.txt": b"a"}, name="ds")
    lab.datasets[name] = lab.datasets.pop("ds")
    (lab.tmp / "storage" / "tape" / "ds" / "a.txt").unlink()  # a detail section too
    result = lab.audit()
    assert result.exit_code == 1, result.stderr
    assert shown in result.stdout and f"{shown} (fail):" in result.stdout
    assert not any(c in result.stdout for c in "\u2028\x1b\x9b\u202e")
    assert all(line.startswith(("  ", "-", "dataset", "\n")) or line == "" or
               line.startswith((shown, "1 dataset")) for line in result.stdout.split("\n"))


def test_the_hostile_yaml_benchmark_runs_and_every_hostile_case_exits_4() -> None:
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "hostile_yaml.py"
    run = subprocess.run([sys.executable, str(script), "--runs", "1", "--datasets", "50"],
                         capture_output=True, text=True, timeout=300, check=True)
    rows = {line[:36].strip(): line[36:].split() for line in run.stdout.splitlines()[1:]}
    assert rows["billion laughs"][1] == "4" and rows["nesting 100,000 deep"][1] == "4"
    assert rows["integer of 5,000 digits"][1] == "4" and rows["honest, 50 datasets"][1] == "0"


# -- reports ----------------------------------------------------------------------

def special_target(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"report-{kind}"
    if kind == "stdout-link":  # what /dev/stdout is
        return make_special(path, "link:/proc/self/fd/1")
    if kind == "link":
        (tmp_path / "real-report.txt").write_text("keep me\n")
        return make_special(path, f"link:{tmp_path / 'real-report.txt'}")
    return make_special(path, kind)


@pytest.mark.parametrize(("kind", "says"), [
    ("fifo", "is a FIFO (named pipe), not a regular file"),
    ("device", "is a character device, not a regular file"),
    ("socket", "is a socket, not a regular file"),
    ("stdout-link", "is a symbolic link, not a regular file"),
    ("link", "is a symbolic link, not a regular file"),
])
@pytest.mark.parametrize("option", ["-o", "--report"])
def test_a_report_never_replaces_a_special_file_or_a_link(lab: Lab, tmp_path: Path,
                                                          kind: str, says: str,
                                                          option: str) -> None:
    lab.three_copies({"a.txt": b"a"})
    target = special_target(tmp_path, kind)
    before = os.lstat(target)
    args = ["-o", str(target)] if option == "-o" else ["--report", f"json:{target}"]
    result = lab.audit(*args)
    assert result.exit_code == 2, result.stderr
    assert says in result.stderr
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (
        before.st_mode, before.st_ino, before.st_rdev)
    assert not lab.state.exists()
    if kind == "link":
        assert (tmp_path / "real-report.txt").read_text() == "keep me\n"


def test_dash_means_standard_output(lab: Lab, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies({"a.txt": b"a"})
    monkeypatch.chdir(tmp_path)
    result = lab.audit("--format", "json", "-o", "-")
    assert result.exit_code == 0
    assert result.json()["status"] == "pass"
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("where", ["in the copy", "deep in the copy", "through a link",
                                   "the inventory", "a hard link to the inventory",
                                   "the catalog", "the policy file"])
def test_a_report_never_lands_on_what_the_audit_reads(lab: Lab, tmp_path: Path,
                                                      where: str) -> None:
    nas, _tape, _remote = lab.three_copies({"a.txt": b"a", "sub/b.txt": b"b"})
    (tmp_path / "lab.yaml").write_text("name: lab\nrequire: {copies: 3}\n")
    lab.write(policy="lab.yaml")
    (tmp_path / "nas-link").symlink_to(nas)
    lab.state.parent.mkdir()
    lab.state.write_bytes(b"")
    os.link(lab.inventory, tmp_path / "hardlink.yaml")
    target = {"in the copy": nas / "report.json",
              "deep in the copy": nas / "sub" / "report.json",
              "through a link": tmp_path / "nas-link" / "report.json",
              "the inventory": lab.inventory,
              "a hard link to the inventory": tmp_path / "hardlink.yaml",
              "the catalog": lab.state,
              "the policy file": tmp_path / "lab.yaml"}[where]
    before = {p: p.read_bytes() for p in (lab.inventory, tmp_path / "lab.yaml")}
    for args in (["-o", str(target)], ["--report", f"json:{target}"]):
        result = lab.audit("--format", "json", *args, write=False)
        assert result.exit_code == 2, result.stderr
        assert "choose another path for the report" in result.stderr
    assert not (nas / "report.json").exists() and not (nas / "sub" / "report.json").exists()
    assert {p: p.read_bytes() for p in before} == before
    assert lab.state.read_bytes() == b""  # never opened as a catalog either


def test_an_invalid_inventory_does_not_get_its_report_written_over_it(lab: Lab) -> None:
    lab.three_copies({"a.txt": b"a"})
    text = lab.write().read_text().replace("version: 1", "version: 2")
    lab.inventory.write_text(text)
    result = lab.audit("--report", f"json:{lab.inventory}", write=False)
    assert result.exit_code == 2
    assert lab.inventory.read_text() == text


def test_a_read_only_report_folder_is_one_clear_line(open_tmp: Path) -> None:
    lab = Lab(open_tmp)
    lab.three_copies({"a.txt": b"a"})
    lab.write()
    lab.state.parent.mkdir()
    lab.state.parent.chmod(0o777)
    reports = open_tmp / "reports"
    reports.mkdir(mode=0o555)
    reports.chmod(0o555)
    run = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-m", "threetwoone", "audit", str(lab.inventory), "--state", str(lab.state),
         "-o", str(reports / "report.txt")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 5
    # (A first audit also says it recorded a new baseline.)
    assert run.stderr.endswith(f"\nthreetwoone: cannot write the table report "
                               f"{reports}/report.txt: Permission denied\n")
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    assert list(reports.iterdir()) == []


# -- the state catalog ------------------------------------------------------------

MOVE_ASIDE = "move it aside"
KEEP = "Do not start a new catalog: that would lose every recorded reference."


def test_an_empty_state_option_is_a_usage_error(lab: Lab) -> None:
    lab.three_copies({"a.txt": b"a"})
    lab.write()
    for command in (["audit", str(lab.inventory)], ["history"], ["status"]):
        result = run_cli(*command, "--state", "")
        assert result.exit_code == 2, result.stderr
        assert "'--state': is empty; leave --state out for the default catalog" in \
            result.stderr


def state_target(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "state" / "catalog"
    path.parent.mkdir()
    if kind == "link to a device":
        make_special(path, f"link:{make_special(tmp_path / 'null', 'device')}")
    elif kind == "dangling link":
        make_special(path, f"link:{tmp_path / 'nowhere' / 'catalog'}")
    elif kind == "wal is a fifo":
        make_special(tmp_path / "state" / "catalog-wal", "fifo")
    else:
        make_special(path, kind)
    return path


@pytest.mark.parametrize(("kind", "says"), [
    ("device", "catalog is a character device, not a regular file"),
    ("fifo", "catalog is a FIFO (named pipe), not a regular file"),
    ("link to a device", "catalog is a character device, not a regular file"),
    ("dangling link", "catalog is a symbolic link to "),
    ("wal is a fifo", "catalog-wal is a FIFO (named pipe), not a regular file"),
])
def test_a_state_path_that_is_no_regular_file_is_refused_before_creating_anything(
        lab: Lab, tmp_path: Path, kind: str, says: str) -> None:
    lab.three_copies({"a.txt": b"a"})
    lab.write()
    path = state_target(tmp_path, kind)
    before = sorted(os.listdir(path.parent))
    result = run_cli("audit", str(lab.inventory), "--state", str(path))
    assert result.exit_code == 2, result.stderr
    assert says in result.stderr
    # From the environment: the same refusal (exit 5, not a command-line option).
    secret = make_secret()
    runs = run_with_secret(["audit", str(lab.inventory)], secret,
                           env={"THREETWOONE_STATE": str(path), "DAV_TOKEN": secret},
                           scan=[tmp_path], ignore=[lab.inventory])
    for run in runs:
        assert run.returncode == 5 and says in run.stderr, run.stderr
    assert sorted(os.listdir(path.parent)) == before
    assert not (tmp_path / "nowhere").exists()


def test_state_dev_null_creates_no_dev_null_lock() -> None:
    assert not os.path.exists("/dev/null.lock")
    result = run_cli("history", "--state", "/dev/null")
    assert result.exit_code == 2
    assert "/dev/null is a character device, not a regular file" in result.stderr
    assert not os.path.exists("/dev/null.lock")


def catalog_lab(folder: Path) -> Lab:
    """A lab with one audited dataset: a catalog with references in it."""
    lab = Lab(folder)
    lab.three_copies({"a.txt": b"a", "b.txt": b"b"})
    lab.write()
    assert lab.audit(write=False).exit_code == 0
    return lab


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           sys.executable, "-m", "threetwoone", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("layout", ["read-only folder", "catalog of another account"])
def test_a_catalog_this_account_cannot_write_gets_the_right_advice(open_tmp: Path,
                                                                   layout: str) -> None:
    lab = catalog_lab(open_tmp)
    folder = lab.state.parent
    folder.chmod(0o755)  # root's; nobody may enter but not write
    if layout == "read-only folder":
        lab.state.chmod(0o666)
    before = lab.state.read_bytes()
    for command in (["audit", str(lab.inventory)], ["history"]):
        run = as_nobody(*command, "--state", str(lab.state))
        assert run.returncode == 5, run.stderr
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
        assert MOVE_ASIDE not in run.stderr and KEEP in run.stderr
        if layout == "read-only folder":
            assert f"this account (nobody) cannot write the folder {folder}" in run.stderr
        else:
            assert "this account (nobody) cannot read and write it (owned by root): run " \
                   "as root" in run.stderr
    assert lab.state.read_bytes() == before


FULL_DISK = """\
set -e
mount -t tmpfs -o size=8m t321-full {mnt}
{py} -m threetwoone audit {inventory} --state {mnt}/catalog.sqlite3 -q
{fill}
set +e
{py} -m threetwoone audit {inventory} --state {mnt}/catalog.sqlite3 -q -d big 2> {err}
echo $? > {rc}
set -e
rm {mnt}/filler
{py} -m threetwoone audit {inventory} --state {mnt}/catalog.sqlite3 -q -d big
{py} -m threetwoone history --state {mnt}/catalog.sqlite3 --format json
"""


@pytest.mark.slow
@pytest.mark.parametrize("left", [0, 64 * 1024])  # full at once, or during the run
def test_a_full_disk_says_free_space_and_keeps_the_catalog(lab: Lab, left: int) -> None:
    lab.three_copies({"a.txt": b"a"}, name="small")
    # Enough files that their references need more room than the full disk has.
    lab.three_copies({f"f{i:04d}-{'x' * 80}.txt": b"%d" % i for i in range(1500)},
                     name="big")
    lab.write()
    mnt = lab.tmp / "mnt"
    mnt.mkdir()
    q = shlex.quote
    filler = q(str(mnt / "filler"))
    fill = (f"dd if=/dev/zero of={filler} bs=4k 2>/dev/null || true\n"
            f"truncate -s -{left} {filler}")
    script = FULL_DISK.format(mnt=q(str(mnt)), py=q(sys.executable),
                              inventory=q(str(lab.inventory)), fill=fill,
                              err=q(str(lab.tmp / "err")), rc=q(str(lab.tmp / "rc")))
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    err = (lab.tmp / "err").read_text()
    assert (lab.tmp / "rc").read_text().strip() == "5", err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no space left" in err and f"free in {mnt}" in err
    assert "The catalog is intact" in err and MOVE_ASIDE not in err
    # With space again, the same catalog goes on: both datasets' verdicts are in it.
    verdicts = json.loads(done.stdout)
    assert {v["dataset"] for v in verdicts["verdicts"]} >= {"small", "big"}


def damage_catalog(lab: Lab, how: str) -> None:
    with sqlite3.connect(lab.state) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(lab.state.read_bytes())
    if how == "damaged":
        data[4096 * 2:] = os.urandom(len(data) - 4096 * 2)
    else:
        data[:] = os.urandom(len(data))
    lab.state.write_bytes(bytes(data))


@pytest.mark.parametrize(("how", "says"), [
    ("damaged", "is damaged (database disk image is malformed): restore it from a backup"),
    ("not a database", "is not a threetwoone catalog (file is not a database): check that "
                       "--state or $THREETWOONE_STATE names the catalog"),
])
def test_a_damaged_catalog_says_what_a_new_one_would_lose(lab: Lab, how: str,
                                                          says: str) -> None:
    lab = catalog_lab(lab.tmp)
    damage_catalog(lab, how)
    before = lab.state.read_bytes()
    secret = make_secret()
    for run in run_with_secret(["audit", str(lab.inventory), "--state", str(lab.state)],
                               secret, env={"AWS_SECRET_ACCESS_KEY": secret}):
        assert run.returncode == 5, run.stderr
        assert says in run.stderr
        assert "loses every recorded reference, and the next audit records each " \
               "primary's content as it is then, any rot included" in run.stderr
    assert lab.state.read_bytes() == before


def test_a_newer_or_locked_catalog_is_never_to_be_replaced(lab: Lab) -> None:
    lab = catalog_lab(lab.tmp)
    with sqlite3.connect(lab.state) as db:
        db.execute("INSERT INTO schema_migrations VALUES (999, 'future')")
    result = lab.audit(write=False)
    assert result.exit_code == 5
    assert "upgrade threetwoone" in result.stderr and KEEP in result.stderr
    with sqlite3.connect(lab.state) as db:
        db.execute("DELETE FROM schema_migrations WHERE version = 999")
    from threetwoone.catalog import exclusive_lock
    with exclusive_lock(str(lab.state), 0):
        result = lab.audit("--lock-timeout", "0", write=False)
    assert result.exit_code == 5
    assert "in use by another threetwoone run" in result.stderr
    assert "Never delete the catalog or its -wal file" in result.stderr


def test_a_file_where_the_catalog_folder_should_be(lab: Lab) -> None:
    lab.three_copies({"a.txt": b"a"})
    lab.write()
    result = lab.audit("--state", str(lab.inventory / "catalog.sqlite3"), write=False)
    assert result.exit_code == 5
    assert f"{lab.inventory} is not a folder" in result.stderr
    assert MOVE_ASIDE not in result.stderr


# -- never-passing datasets --------------------------------------------------------

NEVER = """\
version: 1
locations:
  nas: {kind: local, root: /srv/nas, media: disk, site: Uppsala}
  tape: {kind: local, root: /srv/tape, media: tape, site: "uppsala "}
  usb: {kind: local, root: /srv/usb, media: HDD, site: kth}
  cloud: {kind: local, root: /srv/cloud, media: object, site: aws}
datasets:
  two-copies:
    copies: [{location: nas, path: a}, {location: tape, path: a}]
  one-site:
    copies: [{location: nas, path: b}, {location: tape, path: b}, {location: nas, path: b2}]
  declared-twice:
    copies: [{location: nas, path: c}, {location: usb, path: c}, {location: usb, path: ./c}]
  fine:
    copies: [{location: nas, path: d}, {location: tape, path: d}, {location: usb, path: d}]
  misplaced:
    policy: sensitive-lab.yaml
    copies: [{location: nas, path: e}, {location: tape, path: e}, {location: cloud, path: e}]
"""
SENSITIVE = """\
name: sensitive-lab
require: {copies: 2}
allowed: [{site: [uppsala, kth]}]
"""


def test_validate_warns_about_each_dataset_that_can_never_pass(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(NEVER)
    (tmp_path / "sensitive-lab.yaml").write_text(SENSITIVE)
    result = run_cli("validate", str(path))
    assert result.exit_code == 0, result.stderr
    never = {line.split(": ")[3]: line for line in result.stderr.splitlines()
             if "can never pass" in line}
    assert set(never) == {"datasets.two-copies", "datasets.one-site",
                          "datasets.declared-twice", "datasets.misplaced"}
    assert never["datasets.two-copies"].startswith(f"threetwoone: warning: {path}:8: ")
    assert "found 2, policy requires 3 intact copies" in never["datasets.two-copies"]
    # Uppsala and "uppsala " are one site (as the policy compares them): no off-site copy.
    assert "found 0, policy requires 1 counted copy at a site other than the primary's" \
        in never["datasets.one-site"]
    assert "found 2, policy requires 3" in never["datasets.declared-twice"]  # counted once
    assert "not allow" in never["datasets.misplaced"] and "cloud:e" in never["datasets.misplaced"]
    # A looser policy for the run: every dataset can pass.
    (tmp_path / "one.yaml").write_text("name: one\nrequire: {copies: 1}\n")
    result = run_cli("validate", str(path), "--policy", str(tmp_path / "one.yaml"))
    assert result.exit_code == 0 and "can never pass" not in result.stderr


def test_audit_says_a_failing_dataset_could_never_have_passed(lab: Lab) -> None:
    nas = lab.location("nas", "disk", "site-a")
    remote = lab.location("remote", "disk", "site-b")
    for root in (nas, remote):
        write_tree(root / "ds", {"a.txt": b"a"})
    lab.dataset("ds", [{"location": "nas", "path": "ds"}, {"location": "remote", "path": "ds"}])
    code, report = lab.audit_json()
    assert code == 1
    warnings = dataset_of(report, "ds")["warnings"]
    assert any("can never pass policy 3-2-1, even with every declared copy intact" in w
               for w in warnings), warnings
    table = lab.audit(write=False)
    assert "warning: can never pass policy 3-2-1" in table.stdout


# -- no secret in any failing path ---------------------------------------------------

def _secret_lab(lab: Lab) -> Lab:
    """Three good local copies, and a WebDAV location whose bearer token comes
    from $DAV_TOKEN (the secret), so that every run has a secret within reach."""
    lab.three_copies({"a.txt": b"a"})
    lab.locations["dav"] = dav_location({"type": "bearer", "token_env": "DAV_TOKEN"})
    lab.write()
    return lab


def _scenario(lab: Lab, name: str) -> tuple[list[str], int, str]:
    """Set up one failing path of this file: its command line, exit code and words."""
    inv, state = str(lab.inventory), str(lab.state)
    text = lab.inventory.read_text()
    if name == "alias bomb":
        lab.inventory.write_text(text + BILLION_LAUGHS.replace("version: 1\n", "x:\n  ")
                                 .replace("\nlol", "\n  lol").replace("locations: *i", "")
                                 .replace("datasets: {}", ""))
        return ["validate", inv], 4, "expands to more than 1,000,000 values"
    if name == "nul in a path":
        lab.inventory.write_text(text.replace("path: ds\n", 'path: "d\\0s"\n', 1))
        return ["audit", inv, "--state", state], 4, "contains a NUL character"
    if name == "inventory is a fifo":
        fifo = make_special(lab.tmp / "fifo.yaml", "fifo")
        return ["audit", str(fifo), "--state", state], 4, "is a FIFO"
    if name == "policy file missing":
        lab.write(policy="policies/none.yaml")
        return ["audit", inv, "--state", state], 4, "no file"
    if name == "report over the inventory":
        return ["audit", inv, "--state", state, "--report", f"json:{inv}"], 2, "is the inventory"
    if name == "report into a copy":
        return ["audit", inv, "--state", state, "-o",
                str(lab.tmp / "storage" / "nas" / "ds" / "r.json")], 2, "lies inside local copy"
    if name == "state is a device":
        make_special(lab.tmp / "null", "device")
        return ["audit", inv, "--state", str(lab.tmp / "null")], 2, "character device"
    if name == "damaged catalog":
        lab.datasets.clear()
        lab.three_copies({"a.txt": b"a"})  # the dav location is not audited
        lab.locations.pop("dav")
        lab.write()
        assert lab.audit(write=False).exit_code == 0
        damage_catalog(lab, "damaged")
        return (["audit", inv, "--state", state, "--report", f"json:{lab.tmp / 'r.json'}"], 5,
                "is damaged")
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["alias bomb", "nul in a path", "inventory is a fifo",
                                  "policy file missing", "report over the inventory",
                                  "report into a copy", "state is a device",
                                  "damaged catalog"])
def test_no_failing_path_shows_a_secret_from_the_environment(lab: Lab, name: str) -> None:
    lab = _secret_lab(lab)
    args, code, says = _scenario(lab, name)
    secret = make_secret()
    env = {"DAV_TOKEN": secret, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_ACCESS_KEY_ID": "AKIA" + make_secret(length=16)}
    runs = run_with_secret(args, secret, env=env, scan=[lab.tmp])
    for run in runs:
        assert run.returncode == code, run.stderr
        assert says in run.stderr
    assert "Traceback" not in runs[0].stderr
    # --debug shows the traceback (usage errors have none), and still no secret.
    assert ("Traceback" in runs[1].stderr) is (code != 2)


def test_reading_commands_never_create_a_catalog(lab: Lab) -> None:
    lab.three_copies({"a.txt": b"a"})
    lab.write()
    typo = lab.tmp / "stat" / "catalog.sqlite3"   # a mistyped --state
    history = run_cli("history", "--state", str(typo))
    assert history.exit_code == 0 and "no audits recorded" in history.stdout
    assert f"no state catalog at {typo}" in history.stderr
    # Without an inventory an empty answer would exit 0 and look green to monitoring.
    status = run_cli("status", "--state", str(typo))
    assert status.exit_code == 5
    assert f"no state catalog at {typo}: nothing to report" in status.stderr
    # With one, its copies are listed as never audited: exit 1.
    status = run_cli("status", str(lab.inventory), "--state", str(typo))
    assert status.exit_code == 1 and "never audited" in status.stdout
    assert not typo.parent.exists()
