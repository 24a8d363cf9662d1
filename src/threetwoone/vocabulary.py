"""How sites, media and zones are compared, and the media vocabulary.

A policy counts distinct sites, media and zones, so a spelling must never make
diversity: ``Uppsala``, ``uppsala `` and ``UPPSALA`` are one site, ``usb-disk``
and ``USB_Disk`` one media, ``hdd`` and ``disk`` one media type.  Values are
compared by a *key*: Unicode-normalised (NFKC), case-folded, with everything but
letters and digits left out.  Merging spellings can only lower a count, never
raise it: a steward who really has two sites spelt alike gets a FAIL and a
warning, never a wrong PASS.

Media values are further mapped onto a small vocabulary of media *types*
(``MEDIA_TYPES``); a value outside it is allowed and is a type of its own,
with a warning, since a typo (``dsik``) would otherwise count as a second type.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .yamlload import join

if TYPE_CHECKING:
    from .inventory import Inventory

#: media type -> (what it is, other spellings that mean the same type).  Two copies
#: are on different media types when they fail for different reasons: tape against
#: disk, a provider's object store against the lab's disks, a disk unplugged and
#: stored away against one that stays online (as US-CERT's 3-2-1 counts "removable
#: storage").  An SSD beside a hard disk in the same server is the same type.
MEDIA_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "disk": ("hard disks and SSDs that stay connected: servers, NAS, SAN, RAID "
             "arrays, workstations",
             ("hdd", "hard-disk", "hard-drive", "harddisk", "harddrive", "ssd", "nvme",
              "nas", "san", "raid", "magnetic-disk", "spinning-disk")),
    "removable": ("external disks unplugged and stored away between backups",
                  ("usb-disk", "usb-hdd", "usb-drive", "external-disk", "external-drive",
                   "external-hdd", "removable-disk", "portable-disk", "rdx")),
    "flash": ("USB sticks and memory cards",
              ("usb-stick", "usb-flash", "thumb-drive", "pendrive", "sd-card",
               "memory-card")),
    "tape": ("magnetic tape: LTO cartridges, tape libraries, the tape tier of an HSM",
             ("lto", "tape-library", "magnetic-tape")),
    "optical": ("write-once optical discs",
                ("bd-r", "blu-ray", "bluray", "m-disc", "dvd", "dvd-r", "cd-r",
                 "optical-disc")),
    "object": ("object and cloud storage: S3, Swift, Ceph RGW, dCache/Swestore",
               ("s3", "object-storage", "object-store", "cloud", "cloud-storage",
                "swift")),
}


def value_key(text: str) -> str:
    """What two site, media or zone values are compared by."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    key = "".join(ch for ch in folded if ch.isalnum())
    # A value of punctuation only ("-") still differs from another such value.
    return key or " ".join(folded.split())


_MEDIA_BY_KEY = {value_key(spelling): kind for kind, (_what, synonyms) in MEDIA_TYPES.items()
                 for spelling in (kind, *synonyms)}


def media_type(text: str) -> str:
    """The media type ``text`` names: a vocabulary type, else its own key."""
    key = value_key(text)
    return _MEDIA_BY_KEY.get(key, key)


def is_known_media(text: str) -> bool:
    return value_key(text) in _MEDIA_BY_KEY


@dataclass(frozen=True)
class ValueWarning:
    """A spelling in the inventory that is probably a mistake."""

    #: The key path of the value warned about, e.g. ``locations.b.site``.
    keypath: str
    message: str
    #: The locations concerned: a dataset with a copy on one of them shows it.
    locations: tuple[str, ...]


def spelling_warnings(inventory: Inventory) -> list[ValueWarning]:
    """Sites, media and zones of ``inventory`` spelt apart but compared as one,
    and media outside the vocabulary."""
    locations = inventory.locations.values()
    out: list[ValueWarning] = []
    for attribute in ("site", "media", "zone"):
        values = [(loc.name, value) for loc in locations
                  if isinstance(value := loc.settings.get(attribute), str) and value]
        out.extend(_alike(attribute, values))
    known = ", ".join(MEDIA_TYPES)
    for loc in locations:
        if not is_known_media(loc.media):
            out.append(ValueWarning(
                join(join("locations", loc.name), "media"),
                f"media {loc.media!r} (location {loc.name}) is not a known media type "
                f"({known}): it counts as a media type of its own", (loc.name,)))
    return out


def _alike(attribute: str, values: Iterable[tuple[str, str]]) -> list[ValueWarning]:
    """One warning per spelling that differs from the first spelling of its
    group (same key; for media, same type)."""
    group_of = media_type if attribute == "media" else value_key
    first: dict[str, tuple[str, str]] = {}   # group -> (location, value) seen first
    seen: set[str] = set()
    out = []
    for location, value in values:
        group = group_of(value)
        if group not in first:
            first[group] = (location, value)
            seen.add(value)
            continue
        if value in seen:
            continue
        seen.add(value)
        other_location, other = first[group]
        if value_key(value) == value_key(other):
            why = f"differ only in case, spaces or punctuation: compared as one {attribute}"
        else:
            why = f"are the same media type ({group}): they count as one"
        out.append(ValueWarning(
            join(join("locations", location), attribute),
            f"{attribute} {value!r} (location {location}) and {other!r} (location "
            f"{other_location}) {why}", (location, other_location)))
    return out


def warnings_for(warnings: Iterable[ValueWarning], locations: Iterable[str]) -> list[str]:
    """The messages of ``warnings`` that concern any of ``locations``."""
    wanted = set(locations)
    return [w.message for w in warnings if wanted.intersection(w.locations)]
