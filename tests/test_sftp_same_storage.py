"""One folder on one SSH server, reached through two spellings of its address,
is one copy: end to end through the CLI against a real sshd."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, assert_counted_once, write_tree
from servers.sshd import SSHHome, SSHServer

#: Against real servers: part of the whole suite, not of the inner loop.
pytestmark = pytest.mark.slow

pytest_plugins = ["servers.sftp_plugin"]

FILES = {"run/data.bin": os.urandom(5000), "README.txt": b"run 1\n"}


@pytest.fixture
def home(trusted_home: SSHHome, sshd: SSHServer) -> SSHHome:
    """The client home trusting the shared sshd under "localhost" too."""
    trusted_home.trust(sshd.known_hosts(host="localhost"))
    return trusted_home


def sftp(server: SSHServer, host: str, root: Path, **extra: Any) -> dict[str, Any]:
    return {"kind": "sftp", "host": host, "port": server.port, "user": server.user,
            "root": str(root), "identity_file": str(server.client_key), "media": "tape",
            "site": "site-b", "timeout": 10, **extra}


@pytest.mark.parametrize("spelling", ["localhost", "ssh config alias", "through a proxy",
                                      "a symlink to the root"])
def test_one_sftp_folder_through_two_addresses_counts_once(
        lab: Lab, sshd: SSHServer, home: SSHHome, spelling: str) -> None:
    """A local primary, and the same folder on the backup host declared twice:
    as 127.0.0.1, and as ``localhost`` / a Host alias in ~/.ssh/config / a
    name only a proxy knows (the same server key proves the same host) / a
    symlink to its folder.  One physical copy off-site: 3-2-1 must fail, not
    pass with three copies."""
    nas = lab.location("nas", "disk", "site-a")
    remote = sshd.data_dir(f"twice-{os.urandom(4).hex()}")
    for root in (nas, remote):
        write_tree(root / "ds", FILES)
    lab.locations["backup"] = sftp(sshd, "127.0.0.1", remote)
    if spelling == "localhost":
        lab.locations["vault"] = sftp(sshd, "localhost", remote, media="disk")
    elif spelling == "ssh config alias":
        home.config(f"Host vault-host\n    HostName 127.0.0.1\n    Port {sshd.port}\n")
        home.trust(sshd.known_hosts(host="vault-host"))
        lab.locations["vault"] = sftp(sshd, "vault-host", remote, media="disk")
        del lab.locations["vault"]["port"]
    elif spelling == "through a proxy":
        known = home.ssh / "known_hosts"
        home.config(f"Host vault-host\n    HostName backup.internal.invalid\n"
                    f"    Port {sshd.port}\n"
                    f"    ProxyCommand ssh -q -i {sshd.client_key} -o BatchMode=yes "
                    f"-o UserKnownHostsFile={known} -p {sshd.port} {sshd.user}@127.0.0.1 "
                    f"-W 127.0.0.1:%p\n")
        home.trust(sshd.known_hosts(host="backup.internal.invalid"))
        lab.locations["vault"] = sftp(sshd, "vault-host", remote, media="disk")
    else:
        link = sshd.data_dir(f"other-{os.urandom(4).hex()}") / "backups"
        link.symlink_to(remote)
        lab.locations["vault"] = sftp(sshd, "127.0.0.1", link, media="disk")
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "backup", "path": "ds"},
                       {"location": "vault", "path": "ds"}])
    code, report = lab.audit_json()
    assert_counted_once(code, report, "vault")
