"""URLs in an inventory (a WebDAV ``url``, an S3 ``endpoint_url``): shown safely,
compared by what they address.

* :func:`redact` is how every message shows a URL: no user info, no query, no
  fragment, whatever the inventory holds;
* :func:`normal_path` and :func:`default_port` make two spellings of one
  address compare equal (``/data/./``, ``/data//x/``, ``http://h`` and
  ``http://h:80``), for the same-storage check;
* :func:`normal_url` is one spelling of a whole URL, for the storage identity a
  cached verification is bound to (never holding user info or a query).

Pure string work: resolving host names is in :mod:`threetwoone.backends.addresses`.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None


def netloc(parts: SplitResult) -> str:
    """``host[:port]`` of ``parts``, without user info, IPv6 in brackets."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = _port(parts)
    return f"{host}:{port}" if port else host


def redact(url: str) -> str:
    """``url`` without user info, query or fragment: safe for any message."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, netloc(parts), parts.path, "", ""))


def default_port(parts: SplitResult) -> int | None:
    """The port ``parts`` reaches: the explicit one, else the scheme's default."""
    return _port(parts) or DEFAULT_PORTS.get(parts.scheme.lower())


def normal_host(host: str) -> str:
    """A host name as DNS compares it: case folded, no trailing dot."""
    return host.casefold().rstrip(".")


def normal_path(path: str, *, decode: bool = False) -> str:
    """``path`` as one spelling: ``.`` and empty segments dropped, ``..`` applied,
    a leading ``/`` and no trailing one (``/`` for the root).  With ``decode``,
    percent-escapes are decoded first (a URL path), keeping bytes that are not
    UTF-8 as surrogate escapes."""
    if decode:
        path = unquote(path, errors="surrogateescape")
    out: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return "/" + "/".join(out)


def normal_url(url: str) -> str:
    """``url`` in one spelling: scheme and host case-folded, the default port
    left out, the path normalised, no trailing slash.  User info, query and
    fragment are dropped: they never name storage, and may hold secrets."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = normal_host(parts.hostname or "")
    if ":" in host:
        host = f"[{host}]"
    port = _port(parts)
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host += f":{port}"
    return f"{scheme}://{host}{normal_path(parts.path, decode=True).rstrip('/')}"


#: Where credentials go instead of a URL, by the kind of location.
WEBDAV_CREDENTIALS = "use auth: {type: basic, username, password_env} or {type: bearer, token_env}"
WEBDAV_TOKENS = ("a token (such as a dCache macaroon, which dCache also accepts as a "
                 "bearer token) belongs in the environment variable named by "
                 "auth: {type: bearer, token_env}")
S3_CREDENTIALS = ("S3 credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID "
                  "and AWS_SECRET_ACCESS_KEY, or profile:)")


def url_problem(url: str, *, credentials: str, tokens: str) -> str | None:
    """Why ``url`` cannot name storage, in one line that never repeats any of it
    (it may hold a secret); None when it can.

    Refused: anything but http(s) with a host; user info (``KEY:SECRET@``), which
    would be printed wherever the URL is; a query, where tokens travel
    (``?authz=<macaroon>``), which requests would otherwise need to carry
    silently; a fragment (never sent); a port that is not 1-65535.
    ``credentials`` and ``tokens`` say where those belong instead."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return "must be an http:// or https:// URL with a host name"
    if parts.username is not None or parts.password is not None:
        return f"must not hold a user name or password (not shown); {credentials}"
    if parts.query:
        return f"must not have a query (?..., not shown); {tokens}"
    if parts.fragment:
        return "must not have a fragment (#..., not shown)"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    return None


_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@\"'<>]*@")
_QUERY = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>?#]*)[?#][^\s\"'<>]*")


def scrub(text: str) -> str:
    """``text`` (a library's error message) with the user info, query and
    fragment of every URL in it removed: libraries quote URLs whole."""
    return _QUERY.sub(r"\1", _USERINFO.sub(r"\1", text))
