"""Which variable names a message shows: names people write are shown, a
token or password pasted in place of a name is not (threetwoone.envnames)."""

from __future__ import annotations

import pytest

from leaks import make_secret
from threetwoone.envnames import env_variable, looks_like_secret


@pytest.mark.parametrize("name", [
    "DAV_TOKEN", "dav_token", "davToken", "DavToken", "_SWESTORE_TOKEN2", "S3_KEY", "X509_CERT",
    "PASSWORD2024", "THREETWOONE_TEST_DAV_PASSWORD", "RCLONE_CONFIG_T321A_PASS", "A", "x"])
def test_names_people_write_are_shown(name: str) -> None:
    assert not looks_like_secret(name)
    assert env_variable(name, "auth.token_env") == f"environment variable {name} (auth.token_env)"


@pytest.mark.parametrize("secret", [
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",  # a GitHub token's shape
    "AKIAIOSFODNN7EXAMPLE",                      # an AWS access key id
    "a3f91c0e7b2d4e6f8a9b0c1d2e3f4a5b",          # hex
    "Xy7pQ2mN9aBc",                              # a generated password
    "QWERTZUIOPASDFGHJKLYXC",                    # longer than a word
    make_secret(), make_secret(length=12)])
def test_what_looks_like_a_secret_is_not(secret: str) -> None:
    assert looks_like_secret(secret)
    shown = env_variable(secret, "auth.password_env")
    assert secret not in shown and "auth.password_env" in shown
