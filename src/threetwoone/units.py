"""Sizes, bandwidths and durations: parsed from what people write, and written
back the way they read them.

One parser per kind of quantity, used everywhere (``--max-read``, the
inventory's ``transfer:`` section):

* sizes: ``500GiB``, ``20TB``, ``18TiB``, ``10G`` or bytes.  ``KiB``/``Ki``
  and a bare prefix (``10G``) are powers of 1024; ``kB``/``TB`` powers of 1000,
  as disks are sold;
* bandwidths: ``100Mbit/s``, ``1Gbit/s``, ``10Gbps``, ``100 Mb/s`` (bits: a
  lower-case ``b`` or ``bit``), ``125MB/s``, ``1GiB/s``, ``125MBps`` (bytes).
  A network's bandwidth is decimal (1 Gbit/s is 10^9 bits a second).

Printed sizes and rates are decimal too (``12.4 TB``, ``1 Gbit/s``): the units
disks and links are sold in.
"""

from __future__ import annotations

import math
import re

_PREFIXES = "KMGTPE"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]?)(i?)(B?)\s*$", re.IGNORECASE)
_BANDWIDTH = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpeKMGTPE]?)(i?)(bits?|Bytes?|bytes?|b|B)\s*(?:/\s*s(?:ec)?|ps)\s*$")


def _power(prefix: str, binary: bool, bare: bool) -> float:
    """The factor of a unit prefix: 1024-based with ``i`` or without a unit
    letter (``10G``, as --max-read always read it), else 1000-based."""
    if not prefix:
        return 1.0
    exponent = _PREFIXES.index(prefix.upper()) + 1
    return float((1024 if binary or bare else 1000) ** exponent)


def parse_size(text: str) -> int:
    """``500GiB``, ``20TB``, ``18TiB``, ``10G`` or bytes -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 500GiB, 20TB, 18TiB)")
    number, prefix, binary, unit = match.groups()
    return int(float(number) * _power(prefix, bool(binary), not unit))


def parse_bandwidth(text: str) -> float:
    """``100Mbit/s``, ``1Gbit/s``, ``125MB/s`` ... -> bytes a second (more than 0)."""
    if text.strip().startswith("-"):
        raise ValueError(f"not a bandwidth: {text!r} is negative; a link's bandwidth "
                         "must be more than 0")
    match = _BANDWIDTH.match(text)
    if not match:
        raise ValueError(f"not a bandwidth: {text!r} (e.g. 100Mbit/s, 1Gbit/s, 125MB/s)")
    number, prefix, binary, unit = match.groups()
    bits = unit == "b" or unit.lower().startswith("bit")
    rate = float(number) * _power(prefix, bool(binary), False) / (8 if bits else 1)
    if rate <= 0:
        raise ValueError(f"not a bandwidth: {text!r} is zero; a link's bandwidth must be "
                         "more than 0")
    return rate


def _decimal(value: float, units: tuple[str, ...]) -> str:
    """``value`` with the largest decimal prefix that keeps it >= 1, three
    significant digits: ``12.4 TB``, ``850 GB``, ``1 Gbit/s``."""
    index = 0
    while value >= 1000 and index < len(units) - 1:
        value /= 1000
        index += 1
    if value >= 100 or value == int(value):
        text = f"{value:.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {units[index]}"


def format_bytes(count: float) -> str:
    """``12.4 TB``, ``3 bytes``."""
    if count < 1000:
        return f"{int(count)} byte{'' if int(count) == 1 else 's'}"
    return _decimal(count, ("bytes", "kB", "MB", "GB", "TB", "PB", "EB"))


def format_rate(bytes_per_second: float) -> str:
    """A link's speed in bits: ``100 Mbit/s``, ``1 Gbit/s``, ``10 Gbit/s``."""
    return _decimal(bytes_per_second * 8, ("bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"))


def format_seconds(seconds: float) -> str:
    """A transfer time a person can plan with, rounded up (a plan that says
    27 h must not take 27.4): ``40 s``, ``12 min``, ``2.7 h``, ``27 h``,
    ``2 days``, ``3.5 days``."""
    if seconds < 60:
        return f"{max(math.ceil(seconds), 0)} s"
    if seconds < 3600:
        return f"{math.ceil(seconds / 60)} min"
    if seconds < 10 * 3600:
        return f"{math.ceil(seconds / 360) / 10:g} h"  # tenths of an hour, rounded up
    if seconds < 48 * 3600:
        return f"{math.ceil(seconds / 3600)} h"
    days = math.ceil(seconds / 8640) / 10  # tenths of a day, rounded up
    return f"{days:g} days"
