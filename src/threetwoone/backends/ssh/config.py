"""Which SSH connection an inventory location means, resolved the way ``ssh``
would: ``~/.ssh/config`` is honoured (HostName, User, Port, IdentityFile,
IdentitiesOnly, ProxyJump, ProxyCommand, UserKnownHostsFile,
GlobalKnownHostsFile, HostKeyAlias, ConnectTimeout); the inventory's keys win
over it, as options on the ``ssh`` command line do."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import paramiko

from ..interface import LocationUnreachable
from .hostkeys import default_known_hosts_files, host_entry_name

DEFAULT_TIMEOUT = 30.0
DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


@dataclass(frozen=True)
class Target:
    """Everything needed to open one SSH connection, resolved from the
    inventory and ``~/.ssh/config``."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False
    default_keys: tuple[str, ...] = ()
    proxy_command: str | None = None
    proxy_jump: str | None = None
    known_hosts: tuple[str, ...] = ()
    host_key_alias: str | None = None
    host_key_pin: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    #: Where the refusal message tells the user to add a key.
    trust_file: str = "~/.ssh/known_hosts"
    config_file: str | None = None

    @property
    def label(self) -> str:
        return f"{self.user}@{host_entry_name(self.hostname, self.port)}"

    def key(self) -> tuple[Any, ...]:
        """Two locations with equal keys share one connection."""
        return (self.hostname, self.port, self.user, self.identity_files,
                self.identities_only, self.proxy_command, self.proxy_jump, self.known_hosts,
                self.host_key_alias, self.host_key_pin)


def _ssh_home() -> str:
    return os.path.join(os.path.expanduser("~"), ".ssh")


def _load_config(path: str) -> paramiko.SSHConfig | None:
    if not os.path.isfile(path):
        return None
    try:
        return paramiko.SSHConfig.from_path(path)
    except Exception as exc:  # ConfigParseError, OSError, a bad Match exec
        raise LocationUnreachable(f"cannot read {path}: {exc}") from None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split()


def resolve_target(host: str, settings: Mapping[str, Any],
                   config_path: str | None = None) -> Target:
    """The connection ``host`` means, with ``settings`` (inventory keys:
    port, user, identity_file, known_hosts, host_key, timeout) winning over
    ``~/.ssh/config``."""
    config_path = config_path or os.path.join(_ssh_home(), "config")
    config = _load_config(config_path)
    options: dict[str, Any] = dict(config.lookup(host)) if config else {"hostname": host}
    hostname = str(options.get("hostname") or host)
    port = settings.get("port")
    if port is None:
        try:
            port = int(options.get("port", 22))
        except ValueError:
            raise LocationUnreachable(
                f"{config_path}: Port for {host} is not a number") from None
    user = settings.get("user") or options.get("user") or getpass.getuser()
    identity: list[str] = []
    if settings.get("identity_file"):
        identity.append(str(settings["identity_file"]))
    identity += [os.path.expanduser(p) for p in _as_list(options.get("identityfile"))]
    identities_only = str(options.get("identitiesonly", "no")).lower() == "yes"
    defaults = () if identity else tuple(os.path.join(_ssh_home(), k) for k in DEFAULT_KEYS)
    proxy_command = options.get("proxycommand")
    if proxy_command and str(proxy_command).lower() == "none":
        proxy_command = None
    proxy_jump = options.get("proxyjump")
    if proxy_jump and str(proxy_jump).lower() == "none":
        proxy_jump = None
    user_files, system_files = default_known_hosts_files()
    if options.get("userknownhostsfile"):
        user_files = [os.path.expanduser(p) for p in _as_list(options["userknownhostsfile"])]
    if options.get("globalknownhostsfile"):
        system_files = [os.path.expanduser(p)
                        for p in _as_list(options["globalknownhostsfile"])]
    known = list(user_files) + list(system_files)
    trust_file = user_files[0] if user_files else "~/.ssh/known_hosts"
    if settings.get("known_hosts"):
        known.insert(0, str(settings["known_hosts"]))
        trust_file = str(settings["known_hosts"])
    timeout = settings.get("timeout")
    if timeout is None:
        try:
            timeout = float(options.get("connecttimeout", DEFAULT_TIMEOUT))
        except ValueError:
            timeout = DEFAULT_TIMEOUT
    return Target(
        alias=host, hostname=hostname, port=int(port), user=str(user),
        identity_files=tuple(dict.fromkeys(identity)), identities_only=identities_only,
        default_keys=defaults,
        proxy_command=str(proxy_command) if proxy_command else None,
        proxy_jump=str(proxy_jump) if proxy_jump else None,
        known_hosts=tuple(dict.fromkeys(known)),
        host_key_alias=str(options["hostkeyalias"]) if options.get("hostkeyalias") else None,
        host_key_pin=str(settings["host_key"]) if settings.get("host_key") else None,
        timeout=float(timeout), trust_file=trust_file,
        config_file=config_path if config else None)


def _parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` (one hop of ProxyJump)."""
    user = None
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    port = None
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    else:
        host = spec
    return user, host, port
