"""Units (sizes, bandwidths, times) and how plan spells commands per backend."""

from __future__ import annotations

import shlex

import pytest

from leaks import make_secret
from threetwoone.inventory import Location
from threetwoone.repair.commands import HIDDEN_VARIABLE, End, FileList, command
from threetwoone.units import format_bytes, format_rate, format_seconds, parse_bandwidth, parse_size


@pytest.mark.parametrize(("text", "rate"), [
    ("100Mbit/s", 12.5e6), ("1Gbit/s", 125e6), ("125MB/s", 125e6), ("10Gbps", 1.25e9),
    ("100 Mb/s", 12.5e6), ("1GiB/s", 1024**3), ("125MBps", 125e6), ("1bit/s", 0.125),
    ("2.5 Gbit/s", 312.5e6)])
def test_bandwidths_parse_with_their_units(text: str, rate: float) -> None:
    assert parse_bandwidth(text) == pytest.approx(rate)


@pytest.mark.parametrize(("text", "words"), [
    ("0Gbit/s", "zero"), ("-1Gbit/s", "negative"), ("1G", "not a bandwidth"),
    ("fast", "not a bandwidth"), ("100", "not a bandwidth")])
def test_bad_bandwidths_are_refused(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_bandwidth(text)


@pytest.mark.parametrize(("text", "size"), [
    ("20TB", 20 * 10**12), ("18TiB", 18 * 2**40), ("500GiB", 500 * 2**30),
    ("2tb", 2 * 10**12), ("10G", 10 * 2**30), ("1024", 1024)])
def test_sizes_parse_with_their_units(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_times_round_up_and_read_well() -> None:
    assert format_seconds(9600) == "2.7 h"
    assert format_seconds(12.4e12 * 8 / 1e9) == "28 h"  # 27.6 h is not 27
    assert format_seconds(2 * 86400) == "2 days"
    assert format_seconds(960000) == "11.2 days"
    assert format_bytes(12.4e12) == "12.4 TB" and format_rate(12.5e6) == "100 Mbit/s"


def loc(name: str, kind: str, **settings: object) -> Location:
    return Location(name, kind, "disk", "s", {"kind": kind, **settings})


NAS = loc("nas", "local", root="/mnt/nas")
HOST = loc("host", "sftp", host="backup.example.org", root="/backup", port=2222,
           user="auditor", identity_file="/home/a/.ssh/id_ed25519")
HOST2 = loc("host2", "sftp", host="::1", root="/b")
S3 = loc("s3", "s3", bucket="raw", prefix="projects/", endpoint_url="https://s3.example.org")


def test_rsync_to_an_sftp_host_protects_the_remote_path_and_checks_the_host_key() -> None:
    text = command(End(NAS, "run 1"), End(HOST, "it's $x"), FileList(names=["a b"]))
    words = shlex.split(text.split(" | ", 1)[1])
    assert words[:3] == ["rsync", "-a", "--mkpath"] and "-s" in words
    ssh = shlex.split(words[words.index("-e") + 1])
    assert ssh == ["ssh", "-o", "StrictHostKeyChecking=yes", "-p", "2222", "-i",
                   "/home/a/.ssh/id_ed25519"]
    assert words[-2:] == ["/mnt/nas/run 1/", "auditor@backup.example.org:/backup/it's $x/"]
    assert shlex.split(text.split(" | ", 1)[0]) == ["printf", "%s\\0", "a b"]


def test_two_sftp_hosts_or_an_object_store_go_through_rclone() -> None:
    words = shlex.split(command(End(HOST, "d"), End(HOST2, "d"), FileList()))
    assert words[:2] == ["rclone", "copy"]
    assert words[2].startswith(":sftp,host=backup.example.org,user=auditor,port=2222,")
    assert "known_hosts_file=" in words[2] and words[3].startswith(':sftp,host="::1",')
    words = shlex.split(command(End(NAS, "d"), End(S3, "run,1"), FileList(lister="x")))
    assert words[-1] == (':s3,provider=Other,env_auth=true,endpoint="https://s3.example.org"'
                         ":raw/projects/run,1")
    assert "--files-from-raw" in words and "--ignore-times" in words


def test_two_webdav_ends_get_their_passwords_from_their_own_variables() -> None:
    """rclone takes a basic-auth password only obscured, from its configuration:
    each end is a remote defined in rclone's environment, its password obscured
    there from the variable the inventory names (never on a command line)."""
    def dav(name: str, var: str, **extra: object) -> Location:
        return loc(name, "webdav", url=f"https://{name}.example.org/dav",
                   auth={"type": "basic", "username": "u", "password_env": var}, **extra)

    text = command(End(dav("a", "A_PASSWORD"), "d"),
                   End(dav("b", "B_PASSWORD", verify_tls=False), "d"), FileList())
    words = shlex.split(text)
    assert words[:4] == ["RCLONE_CONFIG_T321SOURCE_TYPE=webdav",
                         "RCLONE_CONFIG_T321SOURCE_PASS=$(printenv A_PASSWORD | rclone obscure -)",
                         "RCLONE_CONFIG_T321TARGET_TYPE=webdav",
                         "RCLONE_CONFIG_T321TARGET_PASS=$(printenv B_PASSWORD | rclone obscure -)"]
    assert words[4:7] == ["rclone", "copy", "--no-check-certificate"]
    assert words[-2].startswith("t321source,url=") and words[-1].startswith("t321target,url=")


def test_a_secret_pasted_as_a_variable_name_is_not_printed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A token or password of letters only passes for a variable's name; the
    plan does not print it (the command then fails on its credentials)."""
    token, password = make_secret(), make_secret()
    source = loc("a", "webdav", url="https://a.example.org/dav",
                 auth={"type": "bearer", "token_env": token})
    target = loc("b", "webdav", url="https://b.example.org/dav",
                 auth={"type": "basic", "username": "u", "password_env": password})
    text = command(End(source, "d"), End(target, "d"), FileList())
    assert token not in text and password not in text
    assert text.count(f"printenv {HIDDEN_VARIABLE}") == 2
    # A variable of that name exists: then it is a name, and printed.
    monkeypatch.setenv(token, "the token")
    assert f"printenv {token}" in command(End(source, "d"), End(target, "d"), FileList())

