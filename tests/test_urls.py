"""Spelling of addresses: what is shown, and what compares equal."""

from __future__ import annotations

from urllib.parse import urlsplit

from threetwoone.backends.addresses import host_aliases
from threetwoone.urls import default_port, normal_path, redact


def test_redact_drops_user_info_query_and_fragment() -> None:
    assert redact("https://KEY:SECRET@h.example:8443/a/b?authz=MAC#frag") == \
        "https://h.example:8443/a/b"
    assert redact("http://[::1]:80/x") == "http://[::1]:80/x"


def test_normal_path() -> None:
    assert normal_path("/data/./run1//") == "/data/run1"
    assert normal_path("data/x/../y") == "/data/y"
    assert normal_path("") == normal_path("/./") == "/"
    assert normal_path("/a%20b/%2E/c", decode=True) == "/a b/c"
    assert normal_path("/bad%FF", decode=True) == "/bad\udcff"


def test_default_port() -> None:
    assert default_port(urlsplit("http://h")) == 80
    assert default_port(urlsplit("https://h")) == 443
    assert default_port(urlsplit("https://h:9000")) == 9000
    assert default_port(urlsplit("https://h:99999")) == 443  # invalid: never a crash


def test_host_aliases_are_shared_by_every_name_of_a_machine() -> None:
    assert "loopback:80" in host_aliases("localhost", 80)
    assert "loopback:80" in host_aliases("127.0.0.1", 80)
    assert "loopback:80" in host_aliases("[::1]", 80)
    assert host_aliases("LocalHost.", 80)[0] == "localhost:80"
    assert host_aliases("no-such-host.invalid", 80) == ("no-such-host.invalid:80",)
    assert not set(host_aliases("localhost", 80)) & set(host_aliases("localhost", 81))
