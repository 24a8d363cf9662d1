"""The inventory keys of a ``kind: webdav`` location (dCache, XRootD, EOS,
Nextcloud, any WebDAV server).  Credentials live under ``auth``, by the name of
the environment variable that holds them."""

from __future__ import annotations

from ..settingchecks import Schema, flag, http_url, mapping, positive_number, text

SETTINGS: Schema = {
    "url": (http_url, True), "auth": (mapping, False), "ca_bundle": (text, False),
    "verify_tls": (flag, False), "cert": (text, False), "key": (text, False),
    "timeout": (positive_number, False), "force_download": (flag, False),
}
