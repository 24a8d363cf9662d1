"""Secrets around object storage never reach an output: credentials written into
a WebDAV ``url`` or an S3 ``endpoint_url`` are refused at load (exit 4, saying
where credentials go), and a token, password or AWS credential that cannot be
sent (a line break in it) fails its location with one line naming the variable
(exit 3), never "internal error" quoting the header.  Each failing path runs in
a real process, with and without ``--debug``, with the secret in the
environment; tests/leaks.py scans stdout, stderr, the reports and the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import Lab, write_tree
from leaks import make_secret, run_with_secret
from servers.moto_s3 import MotoS3, fake_aws_environment

if TYPE_CHECKING:
    from backends.conftest_webdav import DavSite

pytest_plugins = ["servers.webdav_plugin"]

#: Against real servers and through the CLI in subprocesses: part of the whole
#: suite, not of the inner loop.
pytestmark = pytest.mark.slow

FILES: dict[str | bytes, bytes] = {"a.txt": b"a\n", "sub/b.bin": bytes(range(256))}


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3]:
    server = MotoS3()
    yield server
    server.stop()


def _audit_args(lab: Lab) -> list[str]:
    report = lab.tmp / "reports" / "audit.json"
    report.parent.mkdir(exist_ok=True)
    return ["audit", str(lab.inventory), "--state", str(lab.state),
            "--report", f"json:{report}"]


def _lab(lab: Lab, remote: dict[str, Any]) -> None:
    """A local primary, a tape copy, and a third copy on the location ``remote``
    that the dataset needs to pass."""
    for name, media in (("nas", "disk"), ("tape", "tape")):
        write_tree(lab.location(name, media, "site-a") / "ds", FILES)
    lab.locations["remote"] = {"media": "object", "site": "site-b", **remote}
    lab.dataset("ds", [{"location": "nas", "path": "ds", "primary": True},
                       {"location": "tape", "path": "ds"},
                       {"location": "remote", "path": "ds"}])
    lab.write()


@pytest.mark.parametrize(("remote", "key", "pointer"), [
    ({"kind": "webdav", "url": "https://auditor:{secret}@dav.example.org/data"},
     "url", "password_env"),
    ({"kind": "webdav", "url": "https://{secret}@dav.example.org/data"}, "url", "token_env"),
    ({"kind": "webdav", "url": "https://dav.example.org/data?authz={secret}"},
     "url", "token_env"),
    ({"kind": "webdav", "url": "https://dav.example.org/data#{secret}"}, "url", "fragment"),
    ({"kind": "s3", "bucket": "b", "endpoint_url": "http://AKIAEXAMPLE:{secret}@s3.example.org"},
     "endpoint_url", "AWS credential chain"),
    ({"kind": "s3", "bucket": "b",
      "endpoint_url": "https://s3.example.org/?X-Amz-Security-Token={secret}"},
     "endpoint_url", "AWS credential chain"),
], ids=["dav-password", "dav-user", "dav-macaroon-query", "dav-fragment", "s3-userinfo",
        "s3-query"])
def test_credentials_in_a_url_are_refused_at_load_unseen(
        lab: Lab, remote: dict[str, str], key: str, pointer: str) -> None:
    secret = make_secret()
    _lab(lab, {k: v.format(secret=secret) for k, v in remote.items()})
    for args in (["validate", str(lab.inventory)], _audit_args(lab)):
        runs = run_with_secret(args, secret, scan=[lab.tmp], ignore=[lab.inventory])
        for run in runs:
            assert run.returncode == 4, run.stderr
            assert f"locations.remote.{key}" in run.stderr
            assert pointer in run.stderr
            assert "Traceback" not in run.stderr or "--debug" in run.args


@pytest.mark.parametrize(("auth", "key"), [("bearer", "token_env"), ("basic", "password_env")])
def test_a_secret_pasted_as_a_variable_name_is_not_echoed_as_unset(
        lab: Lab, auth: str, key: str) -> None:
    """A token or password of letters only is a valid variable name, so it
    passes the load; the audit says no variable of that name is set, naming
    the key that holds it, never the value."""
    secret = make_secret()
    settings = {"type": auth, key: secret, **({"username": "u"} if auth == "basic" else {})}
    _lab(lab, {"kind": "webdav", "url": "https://dav.example.org/data", "auth": settings})
    for run in run_with_secret(_audit_args(lab), secret, scan=[lab.tmp], ignore=[lab.inventory]):
        assert run.returncode == 3, run.stderr
        assert (f"the environment variable auth.{key} names (its name is not shown: it looks "
                "like a token or password") in run.stdout
        assert "is not set or empty" in run.stdout


def _broken(secret: str, where: int = 17) -> str:
    """``secret`` with a line break inside, as a token pasted across two lines."""
    return secret[:where] + "\r\n" + secret[where:]


def test_a_bearer_token_with_a_line_break_fails_the_location_unseen(
        lab: Lab, wsgidav_site: DavSite) -> None:
    secret = make_secret()
    path = wsgidav_site.tree(FILES, stem="ds")
    _lab(lab, {**wsgidav_site.settings(auth={"type": "bearer", "token_env": "DAV_TOKEN"}),
               "site": "site-b"})
    lab.datasets["ds"]["copies"][2]["path"] = path
    lab.write()
    runs = run_with_secret(_audit_args(lab), secret, env={"DAV_TOKEN": _broken(secret)},
                           scan=[lab.tmp])
    for run in runs:
        assert run.returncode == 3, run.stderr
        assert "DAV_TOKEN" in run.stdout and "line break" in run.stdout
        assert "internal error" not in run.stdout + run.stderr


def test_a_password_with_a_line_break_fails_the_location_unseen(
        lab: Lab, wsgidav_site: DavSite) -> None:
    secret = make_secret()
    path = wsgidav_site.tree(FILES, stem="ds")
    _lab(lab, {**wsgidav_site.settings(auth={**wsgidav_site.auth,
                                             "password_env": "DAV_PASSWORD"}),
               "site": "site-b"})
    lab.datasets["ds"]["copies"][2]["path"] = path
    lab.write()
    runs = run_with_secret(_audit_args(lab), secret, env={"DAV_PASSWORD": _broken(secret)},
                           scan=[lab.tmp])
    for run in runs:
        assert run.returncode == 3, run.stderr
        assert "DAV_PASSWORD" in run.stdout and "line break" in run.stdout


@pytest.mark.parametrize("variable", ["AWS_SESSION_TOKEN", "AWS_SECRET_ACCESS_KEY"])
def test_aws_credentials_with_a_line_break_fail_the_location_unseen(
        lab: Lab, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        variable: str) -> None:
    fake_aws_environment(monkeypatch, tmp_path / "aws")
    secret = make_secret()
    bucket = moto_s3.new_bucket("secrets")
    moto_s3.put_tree(bucket, "ds/", {str(k): v for k, v in FILES.items()})
    _lab(lab, {"kind": "s3", "endpoint_url": moto_s3.endpoint_url, "bucket": bucket})
    runs = run_with_secret(_audit_args(lab), secret, env={variable: _broken(secret)},
                           scan=[lab.tmp])
    for run in runs:
        assert run.returncode == 3, run.stderr
        assert variable in run.stdout and "line break" in run.stdout
        assert "internal error" not in run.stdout + run.stderr
