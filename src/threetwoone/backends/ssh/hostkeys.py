"""Host-key checking the way OpenSSH does it, refusing what it cannot verify.

An auditor that accepts an unknown key would happily "verify" a copy on an
impostor, so there is no trust-on-first-use here: the key must be in a
known_hosts file (system, user, the inventory's ``known_hosts:``) or pinned with
``host_key:``.  The refusal message shows the fingerprint and the command that
trusts it, because the person reading a cron mail must be able to act on it.

Pure Python over known_hosts text (hashed names, ``[host]:port``, patterns with
``*``/``?``/``!``, ``@revoked``); no paramiko import, so it is testable alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerKey:
    """The key a server offered: its type name and its public blob."""

    keytype: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    @property
    def short_type(self) -> str:
        """The ``ssh-keyscan -t`` name: ed25519, ecdsa, rsa."""
        return keyscan_type(self.keytype)


@dataclass(frozen=True, slots=True)
class KnownKey:
    keytype: str
    blob: bytes
    file: str
    line: int
    revoked: bool = False


def fingerprint(blob: bytes) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key blob."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def keyscan_type(keytype: str) -> str:
    if keytype.startswith("ecdsa-"):
        return "ecdsa"
    if keytype in ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"):
        return "rsa"
    return keytype.removeprefix("ssh-")


def host_entry_name(host: str, port: int) -> str:
    """How known_hosts names a host: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def _match_hashed(pattern: str, name: str) -> bool:
    # |1|base64(salt)|base64(HMAC-SHA1(salt, name))
    parts = pattern.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt = base64.b64decode(parts[2])
        want = base64.b64decode(parts[3])
    except ValueError:
        return False
    got = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(got, want)


def _glob(pattern: str) -> re.Pattern[str]:
    """OpenSSH patterns know only ``*`` and ``?`` (``[`` is literal: ``[host]:port``)."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in pattern))


def host_matches(patterns: str, name: str) -> bool:
    """OpenSSH's rule: any positive pattern matches and no negated one does."""
    if patterns.startswith("|"):
        return _match_hashed(patterns, name)
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!")
        if _glob(pattern.lower()).fullmatch(name.lower()):
            if negated:
                return False
            matched = True
    return matched


def load_known_keys(files: Iterable[str], names: Sequence[str]) -> list[KnownKey]:
    """Every key listed for any of ``names`` in ``files`` (absent files skipped)."""
    found: list[KnownKey] = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = handle.readlines()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except OSError:
            continue
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            marker = None
            if fields[0].startswith("@"):
                marker = fields.pop(0)
            if len(fields) < 3 or marker == "@cert-authority":
                continue
            patterns, keytype, data = fields[0], fields[1], fields[2]
            if not any(host_matches(patterns, name) for name in names):
                continue
            try:
                blob = base64.b64decode(data, validate=True)
            except ValueError:
                continue
            found.append(KnownKey(keytype, blob, path, number, revoked=marker == "@revoked"))
    return found


def parse_pin(value: str) -> tuple[str | None, str]:
    """``host_key:`` is a fingerprint (``SHA256:...``) or a public key line
    (``ssh-ed25519 AAAA... [comment]``, as ssh-keyscan prints it, host optional).
    Return (keytype or None, fingerprint)."""
    value = value.strip()
    if value.startswith("SHA256:"):
        return None, value.rstrip("=")
    fields = value.split()
    for index, field in enumerate(fields[:-1]):
        if field.startswith(("ssh-", "ecdsa-", "rsa-")):
            try:
                blob = base64.b64decode(fields[index + 1], validate=True)
            except ValueError:
                break
            return field, fingerprint(blob)
    raise ValueError("host_key must be a fingerprint like 'SHA256:...' or a public key "
                     "line like 'ssh-ed25519 AAAA...'")


class HostKeyRefused(Exception):
    """The server's key is unknown, changed or revoked; the message says how to act."""


def _same_type(a: str, b: str) -> bool:
    return keyscan_type(a) == keyscan_type(b) and (
        not a.startswith("ecdsa-") or a == b)


def key_algorithms(keytype: str) -> list[str]:
    """The host key algorithms that negotiate a key of ``keytype``: an RSA key
    signs as rsa-sha2-512, rsa-sha2-256 or (old servers) ssh-rsa."""
    if keyscan_type(keytype) == "rsa":
        return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    return [keytype]


def untried_key_algorithms(offered: Sequence[str], seen: Sequence[ServerKey]
                           ) -> list[str] | None:
    """Host key algorithms for the next kind of key the server has and we
    have not seen yet (in the server's order), or None when none is left."""
    for algorithm in offered:
        if not any(_same_type(algorithm, key.keytype) for key in seen):
            return key_algorithms(algorithm)
    return None


def _pin_refusal(where: str, pin_fp: str, pin_type: str | None, seen: Sequence[ServerKey],
                 offered: Sequence[str]) -> HostKeyRefused:
    keys = ", ".join(f"{key.keytype} {key.fingerprint}" for key in seen)
    found = f"the server offers {keys}" if seen else f"the server has no {pin_type} host key"
    if offered:
        found += f" (host key types it offers: {', '.join(offered)})"
    return HostKeyRefused(
        f"host key of {where} does not match the inventory's host_key "
        f"({f'{pin_type} ' if pin_type else ''}{pin_fp}): {found}; if the host was "
        f"reinstalled, check the new fingerprint with its administrator and update host_key")


def check_pin(pin: str, *, host: str, port: int, seen: Sequence[ServerKey],
              offered: Sequence[str] = ()) -> str:
    """Accept the last of the keys ``seen`` (one per kind of key the server was
    asked for) if it is the pinned one, or raise HostKeyRefused naming every key
    seen and the host key types the server ``offered``."""
    where = host_entry_name(host, port)
    try:
        pin_type, pin_fp = parse_pin(pin)
    except ValueError as exc:
        raise HostKeyRefused(f"host key of {where}: {exc}") from None
    if seen:
        server = seen[-1]
        if pin_fp == server.fingerprint and (pin_type is None
                                             or _same_type(pin_type, server.keytype)):
            return f"pinned host_key {pin_fp}"
    raise _pin_refusal(where, pin_fp, pin_type, seen, offered)


def check_host_key(server: ServerKey, *, host: str, port: int, names: Sequence[str],
                   files: Sequence[str], pin: str | None, trust_file: str) -> str:
    """Accept ``server`` or raise HostKeyRefused.  Return how it was verified."""
    where = host_entry_name(host, port)
    scan = (f"ssh-keyscan -p {port} -t {server.short_type} {host} >> {trust_file}"
            if port != 22 else f"ssh-keyscan -t {server.short_type} {host} >> {trust_file}")
    offered = f"{server.keytype} {server.fingerprint}"
    if pin is not None:
        return check_pin(pin, host=host, port=port, seen=[server])
    known = load_known_keys(files, names)
    for key in known:
        if key.revoked and key.blob == server.blob:
            raise HostKeyRefused(
                f"host key of {where} ({offered}) is marked @revoked in "
                f"{key.file}:{key.line}; refusing to connect")
    for key in known:
        if not key.revoked and key.blob == server.blob:
            return f"known_hosts {key.file}:{key.line}"
    same_type = [k for k in known if not k.revoked and _same_type(k.keytype, server.keytype)]
    if same_type:
        old = same_type[0]
        raise HostKeyRefused(
            f"host key of {where} has CHANGED: the server offers {offered}, "
            f"{old.file}:{old.line} has {fingerprint(old.blob)}; this may be a "
            f"man-in-the-middle attack; if the host was reinstalled, confirm the new "
            f"fingerprint with its administrator, remove the old key with "
            f"ssh-keygen -R '{where}' -f {old.file} and trust the new one with: {scan}")
    searched = ", ".join(files) if files else "(no known_hosts files)"
    raise HostKeyRefused(
        f"host key of {where} is not known (searched {searched}): the server offers "
        f"{offered}; confirm this fingerprint with the host's administrator, then "
        f"trust it with: {scan}  (or pin it with host_key: {server.fingerprint})")


def known_key_types(files: Sequence[str], names: Sequence[str]) -> list[str]:
    """Key types already known for the host, to ask the server for those first
    (as OpenSSH does), so a host known only by its RSA key is not refused
    because it prefers to present Ed25519."""
    types: list[str] = []
    for key in load_known_keys(files, names):
        if key.revoked:
            continue
        for keytype in key_algorithms(key.keytype):
            if keytype not in types:
                types.append(keytype)
    return types


def default_known_hosts_files(home: str | None = None) -> tuple[list[str], list[str]]:
    """(user files, system files) OpenSSH reads when the config names none."""
    home = home or os.path.expanduser("~")
    user = [os.path.join(home, ".ssh", "known_hosts"),
            os.path.join(home, ".ssh", "known_hosts2")]
    system = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]
    return user, system
