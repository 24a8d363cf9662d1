"""The secret-leak harness itself (tests/leaks.py): it must catch what it claims to."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from leaks import assert_no_secret, leaks, make_secret


def test_secrets_are_fresh_and_hold_no_hex_digit() -> None:
    first, second = make_secret(), make_secret()
    assert first != second
    assert not any(c in "0123456789abcdefABCDEF" for c in first[3:])


@pytest.mark.parametrize("shown", [
    "{secret}",
    "token {head}... is not set",                       # a truncated echo
    "Authorization: Basic {basic}",                     # HTTP basic auth, base64
    "https://host/x?authz={quoted}",                    # percent-encoded
])
def test_harness_catches_each_form_of_a_leak(tmp_path: Path, shown: str) -> None:
    secret = make_secret() + "/+="
    from urllib.parse import quote
    text = shown.format(secret=secret, head=secret[:12], quoted=quote(secret, safe=""),
                        basic=base64.b64encode(f"alice:{secret}".encode()).decode())
    assert leaks(secret, text.encode())
    with pytest.raises(AssertionError, match="secret leaked into stderr"):
        assert_no_secret(secret, {"stderr": text})
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "catalog.sqlite3-wal").write_bytes(b"\0\1" + text.encode())
    with pytest.raises(AssertionError, match=r"catalog\.sqlite3-wal"):
        assert_no_secret(secret, scan=[tmp_path])
    assert_no_secret(secret, scan=[tmp_path],
                     ignore=[tmp_path / "state" / "catalog.sqlite3-wal"])


def test_harness_passes_clean_output() -> None:
    secret = make_secret()
    assert_no_secret(secret, {"stdout": "d41d8cd98f00b204e9800998ecf8427e  x\n" * 100,
                              "stderr": "environment variable DAV_TOKEN is not set"})
