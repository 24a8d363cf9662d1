"""The inventory keys of a ``kind: local`` location (a disk or NAS mount)."""

from __future__ import annotations

from ..settingchecks import Schema, text

SETTINGS: Schema = {"root": (text, True)}
