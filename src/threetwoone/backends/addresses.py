"""Which machine a host name reaches, for telling that two locations are one storage.

Two inventory locations may name one server differently: ``localhost`` and
``127.0.0.1``, a CNAME and its target, a DNS name and its address.  A copy
reached both ways is one physical copy and must count once.  So besides the
spelling of its address, a backend gives each copy root one identity per
address its host name resolves to; the auditor takes two roots sharing any
identity for the same storage.

Erring towards "the same" is the safe side: a copy wrongly merged with
another is not counted (and the report says which), while a copy wrongly
counted twice could make a PASS that is not true.  Every loopback address is
one machine, whatever its spelling (``127.0.0.1``, ``127.0.1.1``, ``::1``).
"""

from __future__ import annotations

import functools
import ipaddress
import socket

from ..urls import normal_host


def _address_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    return ip.compressed


@functools.lru_cache(maxsize=256)
def host_addresses(host: str, port: int) -> tuple[str, ...]:
    """The addresses ``host`` resolves to (loopback ones as ``loopback``), sorted;
    empty when it does not resolve (the connection reports that, not this)."""
    host = normal_host(host.strip("[]"))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    return tuple(sorted({_address_key(str(info[4][0])) for info in infos}))


def host_aliases(host: str, port: int) -> tuple[str, ...]:
    """``host:port`` spellings that name the same machine and port: the normalised
    host name itself, then each address it resolves to."""
    name = normal_host(host.strip("[]"))
    own = _address_key(name)
    keys = [f"{own}:{port}"]
    keys += [f"{address}:{port}" for address in host_addresses(name, port)
             if address != own]
    return tuple(keys)
