"""How long moving bytes between two locations takes, over the network and by
courier, and which is faster.

Network: bytes / the bandwidth of the link declared between the two sites
(``transfer.links``).  Without a link, the throughput measured when the
locations were last audited (bytes read / seconds reading; the slower of the
two ends when both were measured), and the estimate says so.  By courier:
``transfer.courier.days`` door to door (plus, with ``disk_speed``, filling the
disks and copying them off), with ``disk_size`` disks; only between two sites.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..inventory import Inventory, Location
from ..reports.common import iso_time
from ..units import format_bytes, format_rate, format_seconds
from ..vocabulary import value_key
from ..words import plural


@dataclass(frozen=True)
class Estimate:
    bytes: int
    network_seconds: float | None
    #: How the network time was found: ``at 1 Gbit/s``, ``at 85 Mbit/s measured ...``.
    network_basis: str
    courier_seconds: float | None
    disks: int | None
    #: network | courier, or None when neither time is known.
    route: str | None

    @property
    def seconds(self) -> float | None:
        """The recommended route's time."""
        return self.courier_seconds if self.route == "courier" else self.network_seconds

    def words(self) -> str:
        """``12.4 TB: network 27 h at 1 Gbit/s, courier 2 days with 1 disk: network``."""
        parts = []
        if self.network_seconds is not None:
            parts.append(f"network {format_seconds(self.network_seconds)} "
                         f"{self.network_basis}")
        else:
            parts.append(f"network time unknown ({self.network_basis})")
        if self.courier_seconds is not None and self.disks is not None:
            parts.append(f"courier {format_seconds(self.courier_seconds)} with "
                         f"{plural(self.disks, 'disk')}")
        text = f"{format_bytes(self.bytes)}: {', '.join(parts)}"
        return f"{text}: {self.route}" if self.route else text


class Routes:
    """Estimates between the inventory's locations."""

    def __init__(self, inventory: Inventory, throughput: Mapping[str, tuple[float, float]]
                 ) -> None:
        self.inventory = inventory
        #: location -> (bytes a second, when measured)
        self.throughput = throughput

    def rate(self, source: Location, target: Location) -> tuple[float | None, str]:
        """Bytes a second from ``source`` to ``target``, and how it was found."""
        link = None
        if value_key(source.site) != value_key(target.site):
            link = self.inventory.transfer.link(source.site, target.site)
        if link is not None:
            return link, f"at {format_rate(link)}"
        measured = [(self.throughput[loc.name], loc.name) for loc in (source, target)
                    if loc.name in self.throughput]
        where = (f"within site {source.site}" if value_key(source.site) ==
                 value_key(target.site) else f"no link declared between sites {source.site} "
                 f"and {target.site}")
        if not measured:
            return None, (f"{where} and no throughput measured for {source.name} or "
                          f"{target.name} yet; declare the link in transfer.links")
        (rate, when), name = min(measured)
        return rate, (f"at {format_rate(rate)} as measured reading {name} on "
                      f"{(iso_time(when) or '')[:10]} ({where})")

    def estimate(self, source: Location, target: Location, size: int) -> Estimate:
        rate, basis = self.rate(source, target)
        network = size / rate if rate else None
        courier = self.inventory.transfer.courier
        courier_seconds = disks = None
        if courier is not None and value_key(source.site) != value_key(target.site):
            courier_seconds, disks = courier.seconds(size), courier.disks(size)
        known = [(seconds, route) for seconds, route in ((network, "network"),
                                                        (courier_seconds, "courier"))
                 if seconds is not None]
        # A tie goes to the network: no disks to buy and carry.
        route = min(known, key=lambda k: (k[0], k[1] != "network"))[1] if known else None
        return Estimate(size, network, basis, courier_seconds, disks, route)

    def rank(self, target: Location, source: Location, primary: bool, position: int
             ) -> tuple[int, float, int, int]:
        """Sort key of a source copy for ``target``: the same site first, then
        the fastest link (unknown last), the primary, the inventory's order."""
        rate, _basis = self.rate(source, target)
        return (0 if value_key(source.site) == value_key(target.site) else 1,
                1 / rate if rate else float("inf"), 0 if primary else 1, position)
