"""Start-up pays only for what the run uses: a local audit imports no module
of another backend, report format or hash family it does not need.  (How long
start-up takes is measured in benchmarks/, never here.)"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import Lab

#: Runs the CLI in this interpreter, then prints every module it imported.
IMPORTED_BY = """
import json, sys
from threetwoone.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

#: Never needed by a local audit writing a table.
NOT_FOR_A_LOCAL_TABLE = {
    "paramiko", "requests", "urllib3", "boto3", "botocore",  # other backends
    "concurrent.futures", "threetwoone.backends.parallel",  # remote worker threads
    "threetwoone.reports.json", "threetwoone.reports.junit", "threetwoone.reports.html",
    "threetwoone.reports.markdown", "threetwoone.reports.prometheus",  # other formats
    "xml.etree.ElementTree", "html",
    "hashlib", "_hashlib",  # md5/sha*: xxh3_128 is the default
    "tempfile", "shutil", "traceback", "textwrap",  # -o, --debug, policies show
    "importlib.resources", "urllib.parse", "socket",
    # producer manifests and bags, per-file coverage when whole copies are lacking
    "threetwoone.manifest", "threetwoone.bag", "threetwoone.pathglob",
    "threetwoone.repair.replicas",
}


def imported(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", IMPORTED_BY, *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    return out["code"], set(out["modules"])


def test_a_local_audit_imports_only_what_it_uses(lab: Lab) -> None:
    lab.three_copies({f"f{i}": bytes([i]) * 100 for i in range(10)})
    lab.write()
    code, modules = imported("audit", str(lab.inventory), "--state", str(lab.state), "-q")
    assert code == 0
    assert sorted(modules & NOT_FOR_A_LOCAL_TABLE) == []
    assert "threetwoone.backends.local" in modules and "threetwoone.reports.table" in modules


def test_each_format_imports_its_own_module_only(lab: Lab) -> None:
    lab.three_copies({"f": b"x"})
    lab.write()
    code, modules = imported("audit", str(lab.inventory), "--state", str(lab.state),
                             "--format", "json")
    assert code == 0
    assert "threetwoone.reports.json" in modules
    assert not modules & {"threetwoone.reports.junit", "threetwoone.reports.html",
                          "xml.etree.ElementTree"}
