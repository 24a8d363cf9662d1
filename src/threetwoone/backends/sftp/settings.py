"""The inventory keys of a ``kind: sftp`` location.  No password: SFTP logs in
with keys only (a key file, or an ssh-agent)."""

from __future__ import annotations

from ...settingchecks import Schema, flag, port, positive_number, text

SETTINGS: Schema = {
    "host": (text, True), "root": (text, True), "port": (port, False),
    "user": (text, False), "identity_file": (text, False), "known_hosts": (text, False),
    "host_key": (text, False), "timeout": (positive_number, False),
    "remote_hash": (flag, False),
}
