"""End to end: ``threetwoone audit`` on inventories mixing local and SFTP copies,
against a real OpenSSH sshd (tests/servers/sshd.py)."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    Lab,
    copy_by_location,
    dataset_of,
    rot_in_place,
    run_subprocess,
    write_tree,
)
from servers.sshd import SHELLS, SSHHome, SSHServer, isolated_home, running_sshd, shell_account
from threetwoone.backends.sftp import SFTPBackend
from threetwoone.checksums import hash_bytes

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[SSHServer]:
    with running_sshd() as started:
        yield started


@pytest.fixture
def private_server() -> Iterator[SSHServer]:
    """A server of its own, for the test that kills it."""
    with running_sshd() as started:
        yield started


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SSHHome:
    return isolated_home(tmp_path, monkeypatch)

FILES = {"run/reads_R1.fastq": b"@r1\nACGT\n+\nIIII\n" * 500,
         "run/reads_R2.fastq": b"@r2\nTTGA\n+\nIIII\n" * 500,
         "it's $(touch pwned) odd\nname.txt": b"odd"}


def sftp_location(server: SSHServer, root: Path, *, sftp_only: bool = False,
                  **extra: Any) -> dict[str, Any]:
    return {"kind": "sftp", "host": "127.0.0.1",
            "port": server.sftp_only_port if sftp_only else server.port,
            "user": server.user, "root": str(root),
            "identity_file": str(server.client_key), "media": "tape", "site": "site-b",
            "timeout": 10, **extra}


def mixed_lab(lab: Lab, server: SSHServer, remote_root: Path, *,
              sftp_only: bool = False, **extra: Any) -> None:
    """Four datasets, each with a local primary, a local tape copy at the same
    site and an SFTP copy off-site, whose state differs per dataset."""
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "disk", "site-a")
    lab.locations["backup"] = sftp_location(server, remote_root, sftp_only=sftp_only, **extra)
    for name in ("intact", "corrupt", "incomplete", "missing"):
        write_tree(nas / name, FILES)
        write_tree(usb / name, FILES)
        lab.dataset(name, [{"location": "nas", "path": name, "primary": True},
                           {"location": "usb", "path": name},
                           {"location": "backup", "path": name}])


@pytest.fixture
def remote_tree(server: SSHServer) -> Iterator[Path]:
    root = server.data_dir(f"cli-{os.urandom(4).hex()}")
    write_tree(root / "intact", FILES)
    write_tree(root / "corrupt", {**FILES, "run/reads_R2.fastq": b"@r2\nTTGX\n+\nIIII\n" * 500})
    write_tree(root / "incomplete", {k: v for k, v in FILES.items() if "R2" not in k})
    yield root


@pytest.fixture
def trusted(home: SSHHome, server: SSHServer) -> SSHHome:
    home.trust(server.known_hosts())
    return home


def states(report: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    out = {}
    for ds in report["datasets"]:
        copy = copy_by_location(report, ds["name"], "backup")
        out[ds["name"]] = (ds["status"], copy["state"], copy["verification"])
    return out


def test_mixed_audit_remote_hash_and_stream_agree(lab: Lab, server: SSHServer, trusted: SSHHome,
                                                  remote_tree: Path) -> None:
    verdicts = {}
    methods: dict[bool, set[str]] = {}
    for sftp_only in (False, True):
        run = Lab(lab.tmp / ("stream" if sftp_only else "remote"))
        mixed_lab(run, server, remote_tree, sftp_only=sftp_only)
        code, report = run.audit_json("-j", "3")
        assert code == 1
        verdicts[sftp_only] = states(report)
        copy = copy_by_location(report, "corrupt", "backup")
        assert [p["path"] for p in copy["problems"]] == ["run/reads_R2.fastq"]
        assert copy["problems"][0]["problem"] == "corrupt"
        incomplete = copy_by_location(report, "incomplete", "backup")
        assert incomplete["files"]["missing"] == 1 and incomplete["files"]["corrupt"] == 0
        methods[sftp_only] = set(copy_by_location(report, "intact", "backup")["methods"])
        assert dataset_of(report, "intact")["counts"] == {"copies": 3, "media": 2,
                                                          "offsite": 1, "sites": 2}
    assert verdicts[False] == verdicts[True] == {
        "intact": ("pass", "intact", "full"),
        "corrupt": ("fail", "corrupt", "full"),
        "incomplete": ("fail", "incomplete", "full"),
        "missing": ("fail", "missing", "none"),
    }
    # The name with a newline is never given to a remote tool: it is streamed.
    assert methods == {False: {"remote xxhsum -H2", "sftp stream"}, True: {"sftp stream"}}
    assert not list(remote_tree.rglob("pwned"))


def _audit_subprocess(lab: Lab) -> tuple[int, str, dict[str, Any]]:
    import json

    lab.write()
    out = run_subprocess("audit", str(lab.inventory), "--state", str(lab.state),
                         "--format", "json", env={**os.environ})
    return out.returncode, out.stderr, json.loads(out.stdout)


@pytest.mark.parametrize("fault", ["wrong-key", "unknown-host-key", "changed-host-key",
                                   "refused"])
def test_unreachable_sftp_copy_exits_3_without_traceback(
        lab: Lab, server: SSHServer, home: SSHHome, remote_tree: Path, fault: str) -> None:
    extra: dict[str, Any] = {}
    if fault == "wrong-key":
        home.trust(server.known_hosts())
        extra["identity_file"] = str(server.wrong_key)
    elif fault == "changed-host-key":
        home.trust(f"[127.0.0.1]:{server.port} {server.host_keys['other-ed25519']}\n")
    elif fault == "refused":
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            extra["port"] = sock.getsockname()[1]
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "disk", "site-a")
    write_tree(nas / "intact", FILES)
    write_tree(usb / "intact", FILES)
    lab.locations["backup"] = sftp_location(server, remote_tree, **extra)
    lab.dataset("intact", [{"location": "nas", "path": "intact", "primary": True},
                           {"location": "usb", "path": "intact"},
                           {"location": "backup", "path": "intact"}])
    code, stderr, report = _audit_subprocess(lab)
    assert code == 3, stderr
    assert "Traceback" not in stderr
    copy = copy_by_location(report, "intact", "backup")
    assert copy["state"] == "unreachable"
    assert dataset_of(report, "intact")["status"] == "unknown"
    # The location says why, once; the copy points to it.
    assert copy["detail"] == "location backup is unreachable (see locations)"
    assert copy["next_step"] == "see location backup"
    [location] = [loc for loc in report["locations"] if loc["name"] == "backup"]
    assert location["state"] == "unreachable" and location["kind"] == "sftp"
    text = repr(location) + stderr
    expected = {"wrong-key": "authentication failed", "unknown-host-key": "is not known",
                "changed-host-key": "has CHANGED", "refused": "connection refused"}[fault]
    assert expected in text
    if fault == "unknown-host-key":
        assert "SHA256:" in text and "ssh-keyscan" in text
    step = {"wrong-key": "let this account log in to 127.0.0.1 with a key",
            "unknown-host-key": f"then trust it: ssh-keyscan -p {server.port} -t ",
            "changed-host-key": "the host key changed: confirm the new fingerprint",
            "refused": "check that 127.0.0.1 is up and reachable from here"}[fault]
    assert step in location["next_step"]


def test_the_host_key_next_step_is_a_command_that_works(
        lab: Lab, server: SSHServer, home: SSHHome, remote_tree: Path) -> None:
    """Run the exact command an unknown host key's next step gives: the next audit
    reaches the host."""
    import re
    import subprocess

    nas = lab.location("nas", "disk", "site-a")
    write_tree(nas / "intact", FILES)
    lab.locations["backup"] = sftp_location(server, remote_tree)
    lab.dataset("intact", [{"location": "nas", "path": "intact", "primary": True},
                           {"location": "backup", "path": "intact"}])
    code, _stderr, report = _audit_subprocess(lab)
    [location] = [loc for loc in report["locations"] if loc["name"] == "backup"]
    step = location["next_step"]
    assert code in (1, 3) and "then trust it: ssh-keyscan" in step
    command = re.search(r"then trust it: (.*)$", step)
    assert command is not None
    subprocess.run(["bash", "-c", command.group(1)], check=True, timeout=60,
                   capture_output=True)
    code, stderr, report = _audit_subprocess(lab)
    assert copy_by_location(report, "intact", "backup")["state"] == "intact", stderr


def test_sshd_killed_mid_audit_exits_3_and_catalog_survives(
        lab: Lab, private_server: SSHServer, home: SSHHome,
        monkeypatch: pytest.MonkeyPatch) -> None:
    home.trust(private_server.known_hosts())
    remote = private_server.data_dir("killed")
    many = {f"d/f{i:04d}": b"%d" % i for i in range(1200)}
    write_tree(remote / "ds", many)
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "disk", "site-a")
    write_tree(nas / "ds", many)
    write_tree(usb / "ds", many)
    lab.locations["backup"] = sftp_location(private_server, remote)
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "usb", "path": "ds"},
                       {"location": "backup", "path": "ds"}])
    code, report = lab.audit_json()
    assert code == 0, report  # the reference is recorded, all three intact

    original = SFTPBackend.hash_files

    def killing(self: SFTPBackend, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for count, result in enumerate(original(self, *args, **kwargs)):
            if count == 10:
                private_server.stop()
            yield result

    monkeypatch.setattr(SFTPBackend, "hash_files", killing)
    result = lab.audit("--format", "json", "--verify", "full")
    assert result.exit_code == 3
    assert "Traceback" not in result.stderr
    report = result.json()
    copy = copy_by_location(report, "ds", "backup")
    assert copy["state"] == "error"
    assert "connection lost" in repr(copy)
    assert dataset_of(report, "ds")["status"] == "unknown"

    # The catalog is intact: with the server back, the next audit passes again.
    monkeypatch.setattr(SFTPBackend, "hash_files", original)
    private_server.start()
    home.trust(private_server.known_hosts())
    lab.locations["backup"] = sftp_location(private_server, remote)
    code, report = lab.audit_json()
    assert code == 0
    assert copy_by_location(report, "ds", "backup")["state"] == "intact"


def test_remote_hash_output_is_never_attributed_to_the_wrong_file(
        lab: Lab, server: SSHServer, trusted: SSHHome) -> None:
    """``xxhsum`` prints names unescaped: a file named ``p`` + newline +
    ``<xxh3 of q>  q`` prints a line for ``p`` and a line for ``q``.  With
    ``p`` and ``q`` unreadable on the host (the tool exits 1), they must be
    unreadable, not two intact files made up from the forged name."""
    p_data, q_data = b"the content of p\n", b"the content of q\n"
    forged = hash_bytes(q_data, ["xxh3_128"])["xxh3_128"].encode()
    odd = b"p\n" + forged + b"  q"
    files: dict[str | bytes, bytes] = {"p": p_data, "q": q_data, odd: p_data}
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "disk", "site-a")
    remote = server.data_dir(f"forged-{os.urandom(4).hex()}")
    for root in (nas, usb, remote):
        write_tree(root / "ds", files)
    lab.locations["backup"] = sftp_location(server, remote)
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "usb", "path": "ds"},
                       {"location": "backup", "path": "ds"}])
    (remote / "ds" / "p").chmod(0)
    (remote / "ds" / "q").chmod(0)
    code, report = lab.audit_json()
    assert code == 3
    copy = copy_by_location(report, "ds", "backup")
    assert copy["state"] == "error"
    problems = {p["path"]: p["problem"] for p in copy["problems"]}
    assert problems == {"p": "unreadable", "q": "unreadable"}
    assert copy["files"]["corrupt"] == 0
    assert copy["verified_files"] == 1  # the odd name, read over SFTP


def _hostile_names(marker: str) -> dict[str, bytes]:
    """Names that run ``touch MARKER`` (or create MARKER) if any shell parses them."""
    names = [
        f"x\\'\"(touch {marker})\\'",  # fish: \' ends a single-quoted string
        f"$(touch {marker})", f"`touch {marker}`", f"; touch {marker}", f"| touch {marker}",
        f"> {marker}", f"&& touch {marker} &", f"it's \"quoted\" (touch {marker})",
        f"back\\slash\\' ; touch {marker}", f"new\nline; touch {marker}",
        f"!touch {marker}", f"%{{touch {marker}}} {{x,y}} ~ * ? [a]", f"-n; touch {marker}",
        f"sub dir/$(touch {marker}) `touch {marker}`",
    ]
    return {name: f"content {i}\n".encode() for i, name in enumerate(names)}


@pytest.mark.parametrize("shell", list(SHELLS))
def test_no_file_name_reaches_a_remote_shell(lab: Lab, server: SSHServer, trusted: SSHHome,
                                              shell: str) -> None:
    """The audit account's login shell parses the command of every exec.  With
    fish, tcsh, zsh, bash, dash and sh, hostile names are audited right (host
    hashing where the output can name them, streamed otherwise) and nothing
    is created anywhere the account can write."""
    user = shell_account(shell)
    marker = f"PWNED-{os.urandom(4).hex()}"
    files = _hostile_names(marker)
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "disk", "site-a")
    remote = server.data_dir(f"shell-{shell}-{os.urandom(4).hex()}")
    for root in (nas, usb, remote):
        write_tree(root / "ds", files)
    for folder in (remote, remote / "ds", remote / "ds" / "sub dir"):
        folder.chmod(0o777)  # had a name run, `touch` would succeed here
    lab.locations["backup"] = sftp_location(server, remote, user=user)
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "usb", "path": "ds"},
                       {"location": "backup", "path": "ds"}])
    code, report = lab.audit_json("--verify", "full")
    copy = copy_by_location(report, "ds", "backup")
    assert (code, copy["state"]) == (0, "intact"), copy
    assert copy["verified_files"] == len(files)
    # The host's tool did hash (under this login shell); the names it cannot
    # print unambiguously (newline, backslash) were streamed.
    assert set(copy["methods"]) == {"remote xxhsum -H2", "sftp stream"}
    home = Path(pwd.getpwnam(user).pw_dir)
    # A command runs in the login folder or the copy's folder (`cd`); the
    # shared temporary folders are looked at too (not below: others' files).
    created = [path for place in (remote, home) for path in place.rglob(f"{marker}*")]
    created += [path for place in ("/tmp", "/var/tmp", "/dev/shm")
                for path in Path(place).glob(f"{marker}*")]
    assert created == []
    # The hostile files are still there as they were (the auditor only reads).
    assert sorted(os.listdir(os.fsencode(remote / "ds"))) == sorted(
        {os.fsencode(name.split("/")[0]) for name in files})


@pytest.mark.parametrize("sftp_only", [False, True], ids=["host hashes", "streamed"])
def test_file_truncated_after_listing_is_unreadable_not_corrupt(
        lab: Lab, server: SSHServer, trusted: SSHHome, monkeypatch: pytest.MonkeyPatch,
        sftp_only: bool) -> None:
    """A file cut short between the listing and the read (its mtime put back)
    is a failed read (exit 3), not bit rot, on both SFTP read paths."""
    files = {"a.dat": b"a" * 5000, "b.dat": b"b" * 400_000}
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "disk", "site-a")
    remote = server.data_dir(f"truncated-{os.urandom(4).hex()}")
    for root in (nas, usb, remote):
        write_tree(root / "ds", files)
    lab.locations["backup"] = sftp_location(server, remote, sftp_only=sftp_only)
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "usb", "path": "ds"},
                       {"location": "backup", "path": "ds"}])
    code, _report = lab.audit_json()
    assert code == 0

    target = remote / "ds" / "b.dat"
    listed = target.stat()
    walk = SFTPBackend.walk

    def truncating(self: SFTPBackend, path: str) -> Iterator[Any]:
        yield from walk(self, path)
        with open(target, "r+b") as handle:
            handle.truncate(100_000)
        os.utime(target, ns=(listed.st_atime_ns, listed.st_mtime_ns))

    monkeypatch.setattr(SFTPBackend, "walk", truncating)
    code, report = lab.audit_json("--verify", "full")
    copy = copy_by_location(report, "ds", "backup")
    assert code == 3
    assert copy["state"] == "error" and copy["files"]["corrupt"] == 0
    assert [(p["path"], p["problem"], p["detail"]) for p in copy["problems"]] == [
        ("b.dat", "unreadable", "changed while being read")]


def _fingerprint(pub: Path) -> str:
    import subprocess

    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_pinned_rsa_host_key_passes_and_a_wrong_pin_says_what_was_offered(
        lab: Lab, server: SSHServer, home: SSHHome, remote_tree: Path) -> None:
    """No known_hosts at all: the inventory pins the server's RSA key, though
    the server prefers Ed25519.  A wrong pin is unreachable (exit 3), and the
    message names the keys the server has."""
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "disk", "site-a")
    write_tree(nas / "intact", FILES)
    write_tree(usb / "intact", FILES)
    lab.dataset("intact", [{"location": "nas", "path": "intact", "primary": True},
                           {"location": "usb", "path": "intact"},
                           {"location": "backup", "path": "intact"}])
    rsa = _fingerprint(server.workdir / "host_rsa.pub")
    for pin in (server.host_keys["rsa"], rsa):
        lab.locations["backup"] = sftp_location(server, remote_tree, host_key=pin)
        code, report = lab.audit_json()
        assert (code, copy_by_location(report, "intact", "backup")["state"]) == (0, "intact")
    lab.locations["backup"] = sftp_location(
        server, remote_tree, host_key=_fingerprint(server.workdir / "other_ed25519.pub"))
    code, stderr, report = _audit_subprocess(lab)
    assert code == 3 and "Traceback" not in stderr
    copy = copy_by_location(report, "intact", "backup")
    assert copy["state"] == "unreachable"
    ed25519 = _fingerprint(server.workdir / "host_ed25519.pub")
    [location] = [loc for loc in report["locations"] if loc["name"] == "backup"]
    assert f"the server offers ssh-ed25519 {ed25519}, ssh-rsa {rsa}" in location["detail"]


def _three_copies_with_backup(lab: Lab, server: SSHServer, remote: Path) -> None:
    nas = lab.location("nas", "disk", "site-a")
    usb = lab.location("usb", "disk", "site-a")
    for root in (nas, usb, remote):
        write_tree(root / "ds", FILES)
    lab.locations["backup"] = sftp_location(server, remote)
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "usb", "path": "ds"},
                       {"location": "backup", "path": "ds"}])


def test_a_reinstalled_host_is_verified_in_full(lab: Lab, private_server: SSHServer,
                                                 home: SSHHome) -> None:
    """Same address, same root, new host key (and the operator trusted it):
    nothing cached about the copy counts, so bit rot under an unchanged size
    and mtime is found by ``--verify changed``."""
    home.trust(private_server.known_hosts())
    remote = private_server.data_dir("reinstalled")
    _three_copies_with_backup(lab, private_server, remote)
    assert lab.audit_json()[0] == 0
    old_key = _fingerprint(private_server.workdir / "host_ed25519.pub")
    private_server.reinstall()
    (home.ssh / "known_hosts").write_text(private_server.known_hosts())
    rot_in_place(remote / "ds" / "run" / "reads_R1.fastq", 100)
    code, report = lab.audit_json("--verify", "changed")
    copy = copy_by_location(report, "ds", "backup")
    assert (code, copy["state"], copy["verification"]) == (1, "corrupt", "full")
    new_key = _fingerprint(private_server.workdir / "host_ed25519.pub")
    [warning] = [w for w in dataset_of(report, "ds")["warnings"] if "storage" in w]
    assert f"host_key: ssh-ed25519 {old_key} -> ssh-ed25519 {new_key}" in warning


def test_a_host_pointed_at_another_server_is_verified_in_full(
        lab: Lab, server: SSHServer, home: SSHHome) -> None:
    """``host``/``port`` moved to another machine holding a replica (same
    paths, sizes and mtimes, one byte rotted): verified in full."""
    home.trust(server.known_hosts())
    remote = server.data_dir(f"moved-{os.urandom(4).hex()}")
    _three_copies_with_backup(lab, server, remote)
    assert lab.audit_json()[0] == 0
    with running_sshd() as other:
        home.trust(other.known_hosts(host="localhost"))
        replica = other.data_dir("replica")
        replica.rmdir()
        shutil.copytree(remote, replica)  # copy2: mtimes kept
        rot_in_place(replica / "ds" / "run" / "reads_R2.fastq", 100)
        lab.locations["backup"].update(host="localhost", port=other.port, root=str(replica),
                                       identity_file=str(other.client_key))
        code, report = lab.audit_json("--verify", "changed")
    copy = copy_by_location(report, "ds", "backup")
    assert (code, copy["state"], copy["verification"]) == (1, "corrupt", "full"), copy["detail"]
    [warning] = [w for w in dataset_of(report, "ds")["warnings"] if "storage" in w]
    assert "host: 127.0.0.1 -> localhost" in warning and "host_key: " in warning
