"""Headless Chromium (Debian package ``chromium``) as the oracle for the HTML
report: it loads a page from a file, dumps the DOM it built or takes a
screenshot, and writes a network log of every request it made."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         # Nothing can be resolved: a page that needs the network shows it.
         "--host-resolver-rules=MAP * ~NOTFOUND"]

#: Hosts of Chromium's own services (updates, time, accounts), which it calls
#: whatever page it shows; any other host in the network log came from the page.
BROWSER_SERVICES = ("google.com", "googleapis.com", "gstatic.com", "gvt1.com")


@dataclass
class Load:
    dom: str
    #: URLs the browser requested that are neither the page's file nor its own services.
    requests: list[str]


def _run(page: Path, *args: str) -> tuple[str, list[str]]:
    with tempfile.TemporaryDirectory(prefix="threetwoone-chromium-") as profile:
        netlog = Path(profile) / "netlog.json"
        proc = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}/data", f"--log-net-log={netlog}",
             *args, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=True)
        return proc.stdout, _foreign_requests(netlog)


def _foreign_requests(netlog: Path) -> list[str]:
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = {e["params"]["url"] for e in log["events"]
            if e["type"] == start and "url" in e.get("params", {})}
    foreign = []
    for url in sorted(urls):
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "file" or host.endswith(BROWSER_SERVICES):
            continue
        foreign.append(url)
    return foreign


def load(page: Path) -> Load:
    """The DOM Chromium built from ``page``, and the foreign requests it made."""
    dom, requests = _run(page, "--dump-dom")
    return Load(dom, requests)


def screenshot(page: Path, png: Path, width: int = 1100, height: int = 900) -> list[str]:
    """Render ``page`` into ``png``; returns the foreign requests made."""
    _stdout, requests = _run(page, f"--screenshot={png}", f"--window-size={width},{height}",
                             "--hide-scrollbars")
    return requests
