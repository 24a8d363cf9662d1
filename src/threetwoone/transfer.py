"""The inventory's ``transfer:`` section: how fast data moves between sites.

::

    transfer:
      links:
        - {from: uppsala-bmc, to: kth-stockholm, bandwidth: 1Gbit/s}
      courier: {days: 2, disk_size: 20TB, disk_speed: 200MB/s}

A link is symmetric: ``from``/``to`` name its two ends.  Declaring the other
direction too (a link that is faster one way) makes each direction use its
own.  Sites are compared as everywhere else (vocabulary.py: case, spaces and
punctuation do not count), and must be sites of the inventory's locations.

``courier``: a shipment takes ``days`` door to door and carries disks of
``disk_size``; with ``disk_speed``, filling the disks at one end and copying
them off at the other is counted too (twice the bytes at that speed).

Validated with the rest of the inventory (exit 4 with the file, line and key
path); used by ``threetwoone plan`` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .units import parse_bandwidth, parse_size
from .vocabulary import value_key
from .yamlload import join

DAY = 86400.0


@dataclass(frozen=True)
class Courier:
    days: float
    disk_size: int
    #: Bytes a second a disk is written and read at; None: not counted.
    disk_speed: float | None = None

    def disks(self, size: int) -> int:
        return max(1, math.ceil(size / self.disk_size))

    def seconds(self, size: int) -> float:
        handling = 2 * size / self.disk_speed if self.disk_speed else 0.0
        return self.days * DAY + handling


@dataclass(frozen=True)
class Transfer:
    #: (site key, site key) -> bytes a second, both directions filled in.
    links: Mapping[tuple[str, str], float] = field(default_factory=dict)
    courier: Courier | None = None

    def link(self, site_a: str, site_b: str) -> float | None:
        """The declared bandwidth from ``site_a`` to ``site_b``, or None."""
        return self.links.get((value_key(site_a), value_key(site_b)))


Error = Callable[[str, str], None]


def parse_transfer(value: Any, sites: Iterable[str], error: Error) -> Transfer:
    """Validate the ``transfer:`` mapping; report each problem through
    ``error(keypath, message)`` and return what was valid."""
    if value is None:
        return Transfer()
    if not isinstance(value, dict):
        error("transfer", "must be a mapping with 'links' and/or 'courier'")
        return Transfer()
    for key in value:
        if key not in ("links", "courier"):
            error(join("transfer", key), f"unknown key {key!r} (expected one of: courier, "
                                         "links)")
    known = {value_key(site): site for site in sites}
    return Transfer(links=_links(value.get("links"), known, error),
                    courier=_courier(value.get("courier"), error))


def _links(value: Any, sites: Mapping[str, str], error: Error
           ) -> dict[tuple[str, str], float]:
    if value is None:
        return {}
    keypath = join("transfer", "links")
    if not isinstance(value, list):
        error(keypath, "must be a list of {from: SITE, to: SITE, bandwidth: 1Gbit/s}")
        return {}
    declared: dict[tuple[str, str], float] = {}
    where: dict[tuple[str, str], str] = {}
    for index, link in enumerate(value):
        path = join(keypath, index)
        if not isinstance(link, dict):
            error(path, "a link must be a mapping {from: SITE, to: SITE, bandwidth: 1Gbit/s}")
            continue
        ends = []
        for key in link:
            if key not in ("from", "to", "bandwidth"):
                error(join(path, key), f"unknown key {key!r} (expected one of: bandwidth, "
                                       "from, to)")
        for key in ("from", "to"):
            site = link.get(key)
            if not isinstance(site, str) or not site:
                error(join(path, key) if key in link else path,
                      f"{'must be' if key in link else 'missing'} the name of a site"
                      + (" of the inventory's locations" if key in link else f" ({key!r})"))
            elif value_key(site) not in sites:
                error(join(path, key), f"unknown site {site!r} (sites of the inventory's "
                                       f"locations: {', '.join(sorted(sites.values()))})")
            else:
                ends.append(value_key(site))
        rate = None
        bandwidth = link.get("bandwidth")
        if "bandwidth" not in link:
            error(path, "missing 'bandwidth' (e.g. 1Gbit/s, 100Mbit/s, 125MB/s)")
        elif not isinstance(bandwidth, str):
            error(join(path, "bandwidth"), "must be a bandwidth with its unit (e.g. 1Gbit/s, "
                                           "100Mbit/s, 125MB/s)")
        else:
            try:
                rate = parse_bandwidth(bandwidth)
            except ValueError as exc:
                error(join(path, "bandwidth"), str(exc))
        if len(ends) != 2:
            continue
        if ends[0] == ends[1]:
            error(path, f"a link from site {link['from']!r} to itself: links join two "
                        "different sites (copies at one site need no link)")
            continue
        pair = (ends[0], ends[1])
        if pair in where:
            error(path, f"the link from {link['from']!r} to {link['to']!r} is declared twice "
                        f"(also {where[pair]})")
            continue
        where[pair] = path
        if rate is not None:
            declared[pair] = rate
    links = dict(declared)
    for (a, b), rate in declared.items():
        links.setdefault((b, a), rate)  # symmetric unless the other way is declared
    return links


def _courier(value: Any, error: Error) -> Courier | None:
    if value is None:
        return None
    keypath = join("transfer", "courier")
    if not isinstance(value, dict):
        error(keypath, "must be a mapping {days: 2, disk_size: 20TB}")
        return None
    for key in value:
        if key not in ("days", "disk_size", "disk_speed"):
            error(join(keypath, key), f"unknown key {key!r} (expected one of: days, "
                                      "disk_size, disk_speed)")
    days = value.get("days")
    good = True
    if not (isinstance(days, (int, float)) and not isinstance(days, bool) and days > 0):
        error(join(keypath, "days") if "days" in value else keypath,
              "'days' must be a number of days more than 0 (door to door)")
        good = False
    size = _quantity(value, "disk_size", keypath, parse_size, "a disk size with its unit "
                     "(e.g. 20TB, 18TiB)", error)
    speed = None
    if "disk_speed" in value:
        speed = _quantity(value, "disk_speed", keypath, parse_bandwidth, "a speed with its "
                          "unit (e.g. 200MB/s)", error)
        good = good and speed is not None
    if not good or size is None or not isinstance(days, (int, float)):
        return None
    return Courier(days=float(days), disk_size=int(size), disk_speed=speed)


def _quantity(value: Mapping[str, Any], key: str, keypath: str,
              parser: Callable[[str], float], what: str, error: Error) -> float | None:
    if key not in value:
        error(keypath, f"missing {key!r} ({what})")
        return None
    text = value[key]
    if not isinstance(text, str):
        error(join(keypath, key), f"must be {what}")
        return None
    try:
        parsed = parser(text)
    except ValueError as exc:
        error(join(keypath, key), str(exc))
        return None
    if parsed <= 0:
        error(join(keypath, key), f"must be more than 0: {what}")
        return None
    return parsed
