"""Hostile and unlucky inputs: every one ends in one clear line and the right exit
code, in bounded time and memory, with nothing replaced on disk and no secret shown."""

from __future__ import annotations

import pytest

from conftest import Lab, run_cli
from leaks import make_secret, run_with_secret


def dav_location(auth: dict[str, str]) -> dict[str, object]:
    return {"kind": "webdav", "url": "https://dav.example.org/project", "auth": auth,
            "media": "object", "site": "nsc"}


@pytest.mark.parametrize(("auth", "key"), [("bearer", "token_env"),
                                           ("basic", "password_env")])
def test_a_token_pasted_into_an_env_key_is_refused_without_echoing_it(
        lab: Lab, auth: str, key: str) -> None:
    # A JWT or a macaroon: dots, dashes, '=' or '/' make it no variable name.
    secret = f"eyJ{make_secret()}.{make_secret(length=20)}-x="
    lab.location("nas")
    lab.dataset("ds", [{"location": "nas", "path": "ds"}])
    lab.locations["dav"] = dav_location({"type": auth, "username": "alice", key: secret}
                                        if auth == "basic" else {"type": auth, key: secret})
    lab.write()
    for command in (["validate", str(lab.inventory)],
                    ["audit", str(lab.inventory), "--state", str(lab.state)]):
        for run in run_with_secret(command, secret, scan=[lab.tmp], ignore=[lab.inventory]):
            assert run.returncode == 4, run.stderr
            assert f"locations.dav.auth.{key}: must be the name of an environment " \
                   "variable" in run.stderr
    assert not lab.state.exists()


def test_a_valid_env_name_still_validates(lab: Lab) -> None:
    lab.location("nas")
    lab.dataset("ds", [{"location": "nas", "path": "ds"}])
    lab.locations["dav"] = dav_location({"type": "bearer", "token_env": "_SWESTORE_TOKEN2"})
    result = run_cli("validate", str(lab.write()))
    assert result.exit_code == 0, result.stderr
