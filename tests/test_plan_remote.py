"""The ``rclone copy`` commands ``threetwoone plan`` prints for WebDAV, S3 and
SFTP ends, run for real against the test servers (WsgiDAV with basic auth,
XRootD, moto's S3 server, OpenSSH sshd), with the credentials in the
environment exactly as the audit reads them.  The next full audit must pass:
the servers are the oracle of the commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from backends.conftest_webdav import PASSWORD_ENV
from conftest import Lab, dataset_of, rot_in_place, write_tree
from servers.moto_s3 import SECRET_KEY, MotoS3
from servers.sshd import SSHServer
from servers.xrootd import make_readable
from test_plan import plan_json, run_commands

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from backends.conftest_webdav import DavSite

pytest_plugins = ["servers.webdav_plugin", "servers.s3_plugin", "servers.sftp_plugin"]

#: Odd names that a line-based file list still carries (rclone reads one a line).
FILES: dict[str, bytes] = {
    "run/reads R1.fastq": b"@r1\nACGT\n+\nIIII\n" * 300,
    "run/it's $HOME & more.txt": b"odd name\n",
    "SampleSheet.csv": b"Lane,Sample_ID\n1,S1\n",
}
DAMAGED = "run/reads R1.fastq"
REMOVED = "SampleSheet.csv"


class Ends:
    """Builds one location of each kind on the running servers, holding FILES
    (or nothing) at the copy path ``ds``."""

    def __init__(self, lab: Lab, sshd: SSHServer, s3: MotoS3, dav: DavSite,
                 tmp: Path) -> None:
        self.lab, self.sshd, self.s3, self.dav, self.tmp = lab, sshd, s3, dav, tmp
        # Every key the host offers, as ssh-keyscan writes them: rclone before
        # 1.63 checks the key of the type it negotiates first (RSA before
        # Ed25519), so one key type alone is not enough for it (see README).
        self.known_hosts = tmp / "known_hosts"
        self.known_hosts.write_text("".join(
            subprocess.run(["ssh-keyscan", "-p", str(port), "127.0.0.1"], check=True,
                           capture_output=True, text=True, timeout=30).stdout
            for port in (sshd.port, sshd.sftp_only_port)))
        self.damage: dict[str, Any] = {}

    def local(self, name: str, site: str, files: dict[str, bytes]) -> None:
        root = self.lab.location(name, "disk", site)
        write_tree(root / "ds", files)
        self.damage[name] = root / "ds"

    def sftp(self, name: str, site: str, files: dict[str, bytes], *,
             sftp_only: bool = False) -> None:
        root = self.sshd.data_dir(f"plan-{os.urandom(4).hex()}")
        write_tree(root / "ds", files)
        make_readable(root, self.sshd.user)  # the login account writes there
        self.lab.locations[name] = {
            "kind": "sftp", "host": "127.0.0.1",
            "port": self.sshd.sftp_only_port if sftp_only else self.sshd.port,
            "user": self.sshd.user, "root": str(root),
            "identity_file": str(self.sshd.client_key), "known_hosts": str(self.known_hosts),
            "media": "tape", "site": site}
        self.damage[name] = root / "ds"

    def webdav(self, name: str, site: str, files: dict[str, bytes],
               dav: DavSite | None = None, **extra: Any) -> None:
        dav = dav or self.dav
        folder = dav.tree({f"ds/{rel}": data for rel, data in files.items()})
        self.lab.locations[name] = {**dav.settings(), "site": site,
                                    "url": f"{dav.url}/{folder}", **extra}
        self.damage[name] = dav.local(folder) / "ds"

    def s3_bucket(self, name: str, site: str, files: dict[str, bytes]) -> None:
        bucket = self.s3.new_bucket("plan")
        self.s3.put_tree(bucket, "archive/ds/", files, checksum="SHA256")
        self.lab.locations[name] = {"kind": "s3", "endpoint_url": self.s3.endpoint_url,
                                    "bucket": bucket, "prefix": "archive/",
                                    "media": "object", "site": site}
        self.damage[name] = bucket


@pytest.fixture
def ends(lab: Lab, sshd: SSHServer, moto_s3: MotoS3, aws_env: None, wsgidav_site: DavSite,
         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ends:
    monkeypatch.setenv("RCLONE_CONFIG", str(tmp_path / "rclone.conf"))  # none of the machine's
    return Ends(lab, sshd, moto_s3, wsgidav_site, tmp_path)


def declare(lab: Lab, locations: list[str]) -> None:
    """Dataset ``ds`` at path ``ds`` on each location, the first the primary."""
    lab.dataset("ds", [{"location": name, "path": "ds", "primary": name == locations[0]}
                       for name in locations], policy="ndsa-storage-1")


def damage(lab: Lab, ends: Ends, name: str, how: str) -> None:
    """Make copy ``name`` lose REMOVED (``incomplete``) and rot DAMAGED (``corrupt``)."""
    where = ends.damage[name]
    if lab.locations[name]["kind"] == "s3":
        if "rot" in how:
            ends.s3.decay(where, f"archive/ds/{DAMAGED}", 5)
        if "lose" in how:
            ends.s3.client().delete_object(Bucket=where, Key=f"archive/ds/{REMOVED}")
        return
    if "rot" in how:
        rot_in_place(where / DAMAGED, 5)
    if "lose" in how:
        (where / REMOVED).unlink()


def plan_repairs(lab: Lab, broken: set[str]) -> list[str]:
    """Audit in full (exactly the copies ``broken`` are not intact), then the
    commands of the plan's actions, one for each broken copy."""
    code, report = lab.audit_json("--verify", "full")
    states = {c["location"]: c["state"] for c in dataset_of(report, "ds")["copies"]}
    assert code == 1 and {n for n, s in states.items() if s != "intact"} == broken, states
    code, plan = plan_json(lab)
    actions = dataset_of(plan, "ds")["actions"]
    assert code == 1 and {a["location"] for a in actions} == broken
    return [a["command"] for a in actions]


def assert_repaired(lab: Lab) -> None:
    code, report = lab.audit_json("--verify", "full")
    states = {c["location"]: c["state"] for c in dataset_of(report, "ds")["copies"]}
    assert code == 0 and set(states.values()) == {"intact"}, states


def repair_all(lab: Lab, broken: set[str]) -> list[str]:
    """Plan, run every printed command, and every copy is intact again."""
    commands = plan_repairs(lab, broken)
    run_commands(commands)
    assert_repaired(lab)
    return commands


def secrets_of(ends: Ends) -> list[str]:
    return [ends.dav.server.password, SECRET_KEY]


@pytest.mark.slow
def test_repairs_from_a_local_primary_to_every_remote_kind(lab: Lab, ends: Ends) -> None:
    ends.local("nas", "site-a", FILES)
    ends.sftp("backup", "site-b", FILES)
    ends.webdav("dav", "site-c", FILES)
    ends.s3_bucket("archive", "site-d", FILES)
    declare(lab, ["nas", "backup", "dav", "archive"])
    assert lab.audit().exit_code == 0
    damage(lab, ends, "backup", "rot")
    damage(lab, ends, "dav", "rot lose")
    damage(lab, ends, "archive", "rot lose")
    commands = repair_all(lab, {"backup", "dav", "archive"})
    assert sum(c.count("rclone copy") for c in commands) == 2  # dav, archive
    assert not any(secret in c for c in commands for secret in secrets_of(ends))


@pytest.mark.slow
def test_repairs_and_a_whole_copy_from_a_webdav_primary(
        lab: Lab, ends: Ends, wsgidav_private_factory: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The primary on a WebDAV server over TLS (its own CA bundle) with a
    password of its own: two WebDAV ends, two passwords, one command."""
    tls: DavSite = wsgidav_private_factory(tls=True)
    monkeypatch.setenv(PASSWORD_ENV, ends.dav.server.password)  # the factory's was set
    monkeypatch.setenv("PRIMARY_DAV_PASSWORD", tls.server.password)
    tls.auth = {**tls.auth, "password_env": "PRIMARY_DAV_PASSWORD"}
    ends.webdav("primary", "site-a", FILES, tls, ca_bundle=str(tls.server.cert))
    ends.s3_bucket("archive", "site-b", {})  # missing: made again whole
    ends.sftp("vault", "site-c", FILES, sftp_only=True)
    ends.webdav("dav", "site-d", FILES)
    declare(lab, ["primary", "archive", "vault", "dav"])
    assert lab.audit().exit_code == 0  # 3 intact copies; the S3 one is missing
    damage(lab, ends, "vault", "rot lose")
    damage(lab, ends, "dav", "rot")
    commands = repair_all(lab, {"archive", "vault", "dav"})
    assert all(c.count("rclone copy") == 1 for c in commands)
    assert sum("--files-from-raw" not in c for c in commands) == 1  # the whole copy
    assert not any(secret in c for c in commands
                   for secret in [*secrets_of(ends), tls.server.password])


@pytest.mark.slow
def test_many_files_between_two_sftp_hosts_and_from_s3(lab: Lab, ends: Ends) -> None:
    """More files than a command lists inline: ``plan-files --lines`` feeds rclone."""
    files = {**FILES, **{f"many/{n:02}.txt": b"%d\n" % n for n in range(25)}}
    ends.s3_bucket("archive", "site-a", files)
    ends.sftp("backup", "site-b", files)
    ends.sftp("vault", "site-b", files, sftp_only=True)
    ends.local("usb", "site-c", files)
    declare(lab, ["archive", "backup", "vault", "usb"])
    assert lab.audit().exit_code == 0
    for name in ("vault", "usb"):
        for n in range(25):
            (ends.damage[name] / f"many/{n:02}.txt").unlink()
        damage(lab, ends, name, "rot")
    commands = plan_repairs(lab, {"vault", "usb"})
    assert all("threetwoone plan-files" in c and "--lines" in c for c in commands)
    assert sum(c.count(":sftp,") == 2 for c in commands) == 1  # vault from backup
    log_size = ends.sshd.log.stat().st_size
    run_commands(commands)
    # rclone spoke SFTP only: no command line (with file names in it) went
    # through the login shell of the host that has one (backup).
    sessions = [line for line in ends.sshd.log.read_text()[log_size:].splitlines()
                if "Starting session:" in line]
    assert sessions and not [line for line in sessions if "session: command" in line]
    assert_repaired(lab)
