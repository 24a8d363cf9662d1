"""The inventory keys of a ``kind: s3`` location (AWS or any S3-compatible
endpoint).  Credentials come from the standard AWS chain, never the inventory."""

from __future__ import annotations

from ..settingchecks import Schema, endpoint_url, flag, positive_number, text

SETTINGS: Schema = {
    "bucket": (text, True), "endpoint_url": (endpoint_url, False), "prefix": (text, False),
    "region": (text, False), "profile": (text, False),
    "timeout": (positive_number, False), "force_download": (flag, False),
}
