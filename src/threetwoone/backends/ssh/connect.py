"""Opening one SSH connection, or saying in one line why not: the socket
(direct, ProxyCommand, ProxyJump), the handshake with host-key checking (see
:mod:`.hostkeys`) and key authentication.  Authentication is by key only
(identity files, ssh-agent, default ``~/.ssh/id_*``): an audit runs from cron
and must never stop at a prompt."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any, cast

import paramiko

from ..interface import LocationUnreachable
from .config import Target, _parse_jump, resolve_target
from .hostkeys import (
    HostKeyRefused,
    ServerKey,
    check_host_key,
    check_pin,
    host_entry_name,
    key_algorithms,
    known_key_types,
    parse_pin,
    untried_key_algorithms,
)

# paramiko logs a dropped connection as ERROR with a traceback; with no handler
# configured Python would print that to stderr.  Our errors say it in one line;
# ``--debug`` (a root handler) still sees paramiko's records.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

#: Per-channel window: the default 2 MiB starves a fast link; 16 MiB lets SFTP
#: prefetch keep the pipe full without unbounded memory.
WINDOW_SIZE = 16 * 1024 * 1024
MAX_PACKET = 32768


def describe(exc: BaseException) -> str:
    """A one-line reason for a network or SSH failure."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


@dataclass
class _Opened:
    transport: paramiko.Transport
    #: Jump hosts' transports, closed with the main one.
    hops: list[paramiko.Transport] = field(default_factory=list)
    host_key_note: str = ""
    #: A ProxyCommand process, reaped on close (paramiko only signals it).
    proxy: paramiko.ProxyCommand | None = None

    def close(self) -> None:
        for transport in [self.transport, *reversed(self.hops)]:
            with contextlib.suppress(Exception):
                transport.close()
        if self.proxy is not None:
            # The transport's thread closes (signals) the proxy as it ends.
            with contextlib.suppress(Exception):
                self.transport.join(timeout=5)
            process = self.proxy.process
            with contextlib.suppress(Exception):
                process.wait(timeout=5)
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    with contextlib.suppress(Exception):
                        pipe.close()


def _open_socket(target: Target) -> tuple[Any, list[paramiko.Transport]]:
    where = f"{target.hostname}:{target.port}"
    if target.proxy_jump:
        hops: list[paramiko.Transport] = []
        via: paramiko.Transport | None = None
        chain = [hop.strip() for hop in target.proxy_jump.split(",") if hop.strip()]
        try:
            for hop in chain:
                user, host, port = _parse_jump(hop)
                settings: dict[str, Any] = {"timeout": target.timeout}
                if user:
                    settings["user"] = user
                if port:
                    settings["port"] = port
                jump = resolve_target(host, settings, target.config_file)
                # A jump host's own ProxyJump is the chain we are already following.
                jump = Target(**{**jump.__dict__, "proxy_jump": None, "proxy_command": None})
                opened = _open(jump, via)
                hops.extend(opened.hops)
                hops.append(opened.transport)
                via = opened.transport
            assert via is not None
            channel = via.open_channel("direct-tcpip", (target.hostname, target.port),
                                       ("127.0.0.1", 0), timeout=target.timeout)
        except LocationUnreachable as exc:
            for transport in hops:
                transport.close()
            raise LocationUnreachable(f"via ProxyJump {target.proxy_jump}: {exc}") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            for transport in hops:
                transport.close()
            raise LocationUnreachable(
                f"{target.label}: ProxyJump {target.proxy_jump} could not reach "
                f"{where}: {describe(exc)}") from None
        return channel, hops
    if target.proxy_command:
        try:
            return paramiko.ProxyCommand(target.proxy_command), []
        except Exception as exc:
            raise LocationUnreachable(
                f"{target.label}: ProxyCommand failed: {describe(exc)}") from None
    try:
        sock = socket.create_connection((target.hostname, target.port), timeout=target.timeout)
    except socket.gaierror as exc:
        raise LocationUnreachable(
            f"{target.label}: cannot resolve host name {target.hostname!r} "
            f"({exc.strerror or exc})") from None
    except TimeoutError:
        raise LocationUnreachable(
            f"{target.label}: timed out after {target.timeout:g}s connecting to {where}"
        ) from None
    except OSError as exc:
        raise LocationUnreachable(f"{target.label}: cannot connect to {where}: "
                                  f"{describe(exc)}") from None
    # Pipelined SFTP requests are small writes: Nagle's algorithm would hold
    # each one until the previous is acknowledged (a delayed ACK: up to 40 ms).
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, []


class _Transport(paramiko.Transport):
    """A Transport that remembers the host key types the server offered
    (paramiko keeps only the one agreed on): a host key pin may name another
    kind of key than the server prefers, and a refusal says what it has."""

    offered_host_keys: tuple[str, ...] = ()

    def _parse_kex_init(self, m: paramiko.Message) -> None:
        with contextlib.suppress(Exception):  # a garbled KEXINIT: paramiko says why
            parsed = cast(Any, self)._really_parse_kex_init(
                paramiko.Message(m.asbytes()))
            self.offered_host_keys = tuple(parsed["server_key_algo_list"])
        cast(Any, super())._parse_kex_init(m)


def _open(target: Target, via: paramiko.Transport | None = None) -> _Opened:
    """Connect, verify the host key and log in.  With a host key pin, the
    server is asked for the pinned kind of key (a pin without a type: each kind
    of key it offers in turn, one connection each, until one matches)."""
    pin = target.host_key_pin
    key_types = _pinned_key_types(pin)
    seen: list[ServerKey] = []
    while True:
        opened = _start(target, via)
        try:
            server, offered = _handshake(target, opened.transport, key_types)
            if pin is None:
                assert server is not None
                opened.host_key_note = _check_known(target, server)
            else:
                if server is not None:
                    seen.append(server)
                try:
                    opened.host_key_note = check_pin(
                        pin, host=target.host_key_alias or target.hostname,
                        port=22 if target.host_key_alias else target.port, seen=seen,
                        offered=offered)
                except HostKeyRefused as exc:
                    # A fingerprint does not say what kind of key it is: ask
                    # again for each other kind the server has.
                    key_types = (untried_key_algorithms(offered, seen)
                                 if server is not None and _pin_type(pin) is None else None)
                    if key_types is None:
                        raise LocationUnreachable(f"{target.label}: {exc}") from None
                    opened.close()
                    continue
            _authenticate(target, opened.transport)
            opened.transport.set_keepalive(max(5, int(target.timeout / 3)))
        except BaseException:
            opened.close()
            raise
        return opened


def _pin_type(pin: str) -> str | None:
    """The key type a pin names (a public key line), or None (a fingerprint, or
    a pin so malformed that the check will say so)."""
    try:
        return parse_pin(pin)[0]
    except ValueError:
        return None


def _pinned_key_types(pin: str | None) -> list[str] | None:
    """Host key algorithms to offer for a pin that names its key type."""
    pin_type = _pin_type(pin) if pin is not None else None
    return key_algorithms(pin_type) if pin_type else None


def _start(target: Target, via: paramiko.Transport | None) -> _Opened:
    """A transport on a new connection to ``target`` (not started yet)."""
    if via is not None:
        try:
            sock: Any = via.open_channel("direct-tcpip", (target.hostname, target.port),
                                         ("127.0.0.1", 0), timeout=target.timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise LocationUnreachable(f"{target.label}: cannot reach it through the "
                                      f"previous jump host: {describe(exc)}") from None
        hops: list[paramiko.Transport] = []
    else:
        sock, hops = _open_socket(target)
    transport = _Transport(sock, default_window_size=WINDOW_SIZE,
                           default_max_packet_size=MAX_PACKET)
    return _Opened(transport, hops,
                   proxy=sock if isinstance(sock, paramiko.ProxyCommand) else None)


def _key_names(target: Target) -> list[str]:
    if target.host_key_alias:
        return [target.host_key_alias]
    return [host_entry_name(target.hostname, target.port)]


def _handshake(target: Target, transport: paramiko.Transport, key_types: list[str] | None
               ) -> tuple[ServerKey | None, tuple[str, ...]]:
    """Negotiate (offering only ``key_types`` as host keys, if given): (the
    server's host key, the host key types it offered).  The key is None when
    the server has none of ``key_types``."""
    options = transport.get_security_options()
    # Only algorithms paramiko implements (it dropped SHA-1 ssh-rsa and DSA).
    supported = [t for t in key_types or () if t in cast(Any, transport)._key_info]
    if supported:
        options.key_types = supported
    elif target.host_key_pin is None:
        preferred = known_key_types(target.known_hosts, _key_names(target))
        if preferred:
            available = list(options.key_types)
            first = [t for t in preferred if t in available]
            options.key_types = first + [t for t in available if t not in first]
    ciphers = list(options.ciphers)
    # AES-GCM first (the first of ours that the server also offers is used):
    # one AEAD call per packet instead of AES-CTR plus an HMAC object that
    # paramiko builds per packet in Python.  Streaming the benchmark's 20k-file
    # tree over loopback: 2.5 s instead of 3.4 s (medians of 4).
    options.ciphers = [c for c in ciphers if "-gcm@" in c] + [c for c in ciphers
                                                              if "-gcm@" not in c]
    transport.banner_timeout = target.timeout
    transport.auth_timeout = target.timeout
    try:
        transport.start_client(timeout=target.timeout)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        offered = _offered(transport)
        if (key_types is not None and offered
                and isinstance(exc, paramiko.ssh_exception.IncompatiblePeer)
                and not set(key_types) & set(offered)):
            return None, offered
        raise LocationUnreachable(f"{target.label}: SSH handshake failed: "
                                  f"{describe(exc)}") from None
    if not transport.is_active() or not getattr(transport, "initial_kex_done", False):
        # start_client returns quietly when its timeout expires mid-negotiation.
        raise LocationUnreachable(f"{target.label}: SSH handshake failed: timed out after "
                                  f"{target.timeout:g}s")
    try:
        key = transport.get_remote_server_key()
    except paramiko.SSHException as exc:
        raise LocationUnreachable(f"{target.label}: SSH handshake failed: "
                                  f"{describe(exc)}") from None
    return ServerKey(key.get_name(), key.asbytes()), _offered(transport)


def _offered(transport: paramiko.Transport) -> tuple[str, ...]:
    offered: tuple[str, ...] = getattr(transport, "offered_host_keys", ())
    return offered


def _check_known(target: Target, server: ServerKey) -> str:
    """Verify ``server`` against the known_hosts files: how, or LocationUnreachable."""
    try:
        return check_host_key(
            server, host=target.host_key_alias or target.hostname,
            port=22 if target.host_key_alias else target.port, names=_key_names(target),
            files=target.known_hosts, pin=None, trust_file=target.trust_file)
    except HostKeyRefused as exc:
        raise LocationUnreachable(f"{target.label}: {exc}") from None


def _load_key(path: str) -> tuple[paramiko.PKey | None, str | None]:
    """(key, None) or (None, why it was skipped)."""
    try:
        return paramiko.PKey.from_path(path), None
    except paramiko.PasswordRequiredException:
        return None, f"{path} is encrypted (add it to ssh-agent)"
    except FileNotFoundError:
        return None, None
    except (paramiko.SSHException, OSError, ValueError) as exc:
        return None, f"{path}: {describe(exc)}"


def _public_blob(path: str) -> bytes | None:
    try:
        with open(path + ".pub", encoding="ascii", errors="replace") as handle:
            fields = handle.read().split()
        return base64.b64decode(fields[1]) if len(fields) > 1 else None
    except (OSError, ValueError):
        return None


def _authenticate(target: Target, transport: paramiko.Transport) -> None:
    tried: list[str] = []
    skipped: list[str] = []
    candidates: list[tuple[str, paramiko.PKey]] = []
    for path in target.identity_files:
        key, why = _load_key(path)
        if key is not None:
            candidates.append((path, key))
        elif why:
            skipped.append(why)
        elif path in target.identity_files[:1] and not os.path.exists(path):
            skipped.append(f"{path} does not exist")
    agent_keys: list[paramiko.AgentKey] = []
    if os.environ.get("SSH_AUTH_SOCK"):
        with contextlib.suppress(paramiko.SSHException, OSError):
            agent_keys = list(paramiko.Agent().get_keys())
    if target.identities_only:
        wanted = {_public_blob(p) for p in target.identity_files} - {None}
        agent_keys = [k for k in agent_keys if k.asbytes() in wanted]
    seen = {key.asbytes() for _, key in candidates}
    for agent_key in agent_keys:
        if agent_key.asbytes() not in seen:
            candidates.append((f"ssh-agent key {agent_key.get_name()}", agent_key))
            seen.add(agent_key.asbytes())
    for path in target.default_keys:
        key, why = _load_key(path)
        if key is not None and key.asbytes() not in seen:
            candidates.append((path, key))
            seen.add(key.asbytes())
        elif why:
            skipped.append(why)
    for label, key in candidates:
        try:
            transport.auth_publickey(target.user, key)
        except paramiko.BadAuthenticationType as exc:
            raise LocationUnreachable(
                f"{target.label}: authentication failed: the server does not accept keys "
                f"(allowed: {', '.join(exc.allowed_types) or 'none'})") from None
        except paramiko.AuthenticationException:
            tried.append(label)
            continue
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise LocationUnreachable(f"{target.label}: authentication failed: "
                                      f"{describe(exc)}") from None
        if transport.is_authenticated():
            return
    detail = f"tried {', '.join(tried)}" if tried else "no usable key"
    if skipped:
        detail += f"; skipped {'; '.join(skipped)}"
    raise LocationUnreachable(f"{target.label}: authentication failed ({detail})")
