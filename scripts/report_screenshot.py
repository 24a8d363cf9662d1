#!/usr/bin/env python3
"""Make docs/report.png, the README's picture of the HTML report: audit a copy
of examples/basic for a few simulated nights (one with the USB disk unplugged),
write the HTML report and let headless Chromium take a screenshot.

    .venv/bin/python scripts/report_screenshot.py [OUT.png]    # default docs/report.png

The example's own folder is never touched: the audits run on a copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from browser import screenshot  # noqa: E402  (the tests' Chromium helper)


def audit(inventory: Path, state: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "threetwoone", "audit", str(inventory),
                           "--state", str(state), "-q", *args],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"audit failed ({proc.returncode}): {proc.stderr}")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "report.png"
    with tempfile.TemporaryDirectory(prefix="threetwoone-screenshot-") as tmp:
        example = Path(tmp) / "examples" / "basic"
        shutil.copytree(REPO / "examples" / "basic", example)
        inventory, state = example / "inventory.yaml", Path(tmp) / "state.sqlite3"
        usb = example / "storage" / "usb-disk"
        for night in range(6):
            if night == 3:  # the USB disk was not plugged in that night
                usb.rename(usb.with_name("usb-disk-unplugged"))
            audit(inventory, state)
            if night == 3:
                usb.with_name("usb-disk-unplugged").rename(usb)
        page = Path(tmp) / "report.html"
        audit(inventory, state, "--report", f"html:{page}")
        out.parent.mkdir(parents=True, exist_ok=True)
        requests = screenshot(page, out)
        if requests:
            raise SystemExit(f"the page asked for {requests}")
    print(f"wrote {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
