"""Durations as people write them, one parser for the command line
(``--fixity-interval``, ``--time-limit``), inventories (``offline_max_age``)
and policy files (``max_age``): a number and a unit, ``45s``, ``30m``, ``12h``,
``90d``, ``2w``, ``1y`` (365 days); a number alone is seconds."""

from __future__ import annotations

import re

DAY = 86400.0
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY, "y": 365 * DAY}
_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "y": "year"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError when it is no duration."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 30d, 4h, 90m)")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def duration_words(text: str) -> str:
    """``90d`` -> ``90 days`` for sentences; ``text`` itself when it is no duration."""
    match = _DURATION.match(text.lower())
    if not match:
        return text
    number, unit = match.group(1), _WORDS[match.group(2) or "s"]
    return f"{number} {unit}{'' if number == '1' else 's'}"
