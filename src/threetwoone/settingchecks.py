"""Checks of inventory settings, each a function from a value to what is
wrong with it (None when nothing is).  inventory.py checks the keys every
location has with them; each backend declares its own keys with them, next to
its code (``backends/*settings.py``).  No message ever repeats a value that may
be a secret."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

#: A check: the value -> what is wrong with it, or None.
Check = Callable[[Any], str | None]
#: A mapping's keys: key -> (check, required).
Schema = Mapping[str, tuple[Check, bool]]


def text(value: Any) -> str | None:
    return None if isinstance(value, str) and value != "" else "must be a non-empty string"


def flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def port(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
    return None if ok else "must be a port number (1-65535)"


def duration(value: Any) -> str | None:
    from .durations import parse_duration
    try:
        ok = isinstance(value, str) and parse_duration(value) > 0
    except ValueError:
        ok = False
    return None if ok else "must be a duration such as 90d, 12w or 36h"


def positive_number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return None if ok else "must be a positive number of seconds"


def string_list(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return None
    return "must be a list of non-empty strings"


def http_url(value: Any) -> str | None:
    """A WebDAV ``url``.  The message never repeats the value: it may hold a secret."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    # Imported here: only inventories with URLs pay for urllib.parse.
    from .urls import WEBDAV_CREDENTIALS, WEBDAV_TOKENS, url_problem

    return url_problem(value, credentials=WEBDAV_CREDENTIALS, tokens=WEBDAV_TOKENS)


def endpoint_url(value: Any) -> str | None:
    """An S3 ``endpoint_url``.  The message never repeats the value."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    from .urls import S3_CREDENTIALS, url_problem

    return url_problem(value, credentials=S3_CREDENTIALS, tokens=S3_CREDENTIALS)


#: What a POSIX shell accepts as an environment variable name.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_name(value: Any) -> str | None:
    """For every ``*_env`` key.  The message never repeats the value: a value
    that is not a name is most likely the secret itself, pasted in."""
    if isinstance(value, str) and _ENV_NAME.fullmatch(value):
        return None
    return ("must be the name of an environment variable (letters, digits and _, not "
            "starting with a digit) that holds the secret, not the secret itself; the "
            "value is not shown")


def mapping(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be a mapping"



#: Checks that want text: a failure there gets a hint when YAML read an
#: unquoted value as something else (``root: off``).
TEXT_CHECKS: tuple[Check, ...] = (text, env_name, http_url, endpoint_url)
