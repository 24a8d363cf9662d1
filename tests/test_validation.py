"""Inventory and policy validation: every error names file, line and key path."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli, run_subprocess

GOOD = """\
version: 1
policy: 3-2-1
locations:
  nas:
    kind: local
    root: data/nas
    media: disk
    site: uppsala
  backup:
    kind: sftp
    host: backup.example.org
    root: /backup
    media: tape
    site: kth
datasets:
  run1:
    checksums: {file: checksums.md5, algorithm: md5}
    copies:
      - {location: nas, path: run1, primary: true}
      - {location: backup, path: run1}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def validate(path: Path) -> tuple[int, str]:
    result = run_cli("validate", str(path))
    return result.exit_code, result.stdout + result.stderr


def test_good_inventory_validates_without_touching_storage(tmp_path: Path) -> None:
    # Neither the nas root nor the sftp host exist: validate must not care.
    code, out = validate(write(tmp_path, GOOD))
    assert code == 0, out
    assert "valid (2 locations, 1 dataset)" in out


@pytest.mark.parametrize(("change", "line", "message"), [
    (("location: backup, path", "location: nas2, path"), 20,
     "datasets.run1.copies[1].location: unknown location 'nas2'"),
    (("    site: kth\n", "    site: kth\n    colour: blue\n"), 15,
     "locations.backup.colour: unknown key 'colour'"),
    (("    media: tape\n", ""), 9, "locations.backup: missing required key 'media'"),
    (("    site: uppsala\n", ""), 4, "locations.nas: missing required key 'site'"),
    (("path: run1}\n", "path: run1, primary: true}\n"), 20,
     "datasets.run1.copies[1]: more than one primary copy"),
    (("    media: disk\n", "    media: disk\n    media: tape\n"), 8,
     "locations.nas.media: duplicate key 'media' (first defined on line 7)"),
    (("    host: backup.example.org\n",
      "    host: backup.example.org\n    password: hunter2\n"), 12,
     "locations.backup.password: secrets must not be written in the inventory; "
     "use identity_file (a key file) or an ssh-agent: sftp logs in with keys only"),
    (("kind: sftp", "kind: ftp"), 10, "locations.backup.kind: unknown kind 'ftp'"),
    (("version: 1", "version: 2"), 1, "version: unsupported inventory version 2"),
    (("algorithm: md5", "algorithm: crc99"), 17,
     "datasets.run1.checksums.algorithm: unsupported algorithm 'crc99'"),
    (("path: run1, primary", "path: ../run1, primary"), 19,
     "datasets.run1.copies[0].path: must not contain '..'"),
    (("datasets:\n", "datasets:\n  run0: {copies: []}\n"), 16,
     "datasets.run0.copies: must be a non-empty list"),
])
def test_each_validation_error(tmp_path: Path, change: tuple[str, str], line: int,
                               message: str) -> None:
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    code, out = validate(path)
    assert code == 4, out
    assert f"{path}:{line}: {message}" in out, out
    assert "Traceback" not in out


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    media: disk\n", "    media: [disk\n"))
    code, out = validate(path)
    assert code == 4 and f"{path}:" in out and "malformed YAML" in out


def test_several_errors_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("site: uppsala", "sight: uppsala")
                 .replace("location: backup", "location: gone"))
    code, out = validate(path)
    assert code == 4
    assert out.count("threetwoone: ") >= 3  # unknown key, missing site, unknown location


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "version: 1\n", "{{{{"])
def test_not_an_inventory(tmp_path: Path, text: str) -> None:
    code, out = validate(write(tmp_path, text))
    assert code == 4 and str(tmp_path) in out


def test_missing_file_and_directory(tmp_path: Path) -> None:
    code, out = validate(tmp_path / "nope.yaml")
    assert code == 4 and "no such file" in out
    code, out = validate(tmp_path)
    assert code in (2, 4)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes(GOOD.encode().replace(b"uppsala", b"upps\xe5la"))
    code, out = validate(path)
    assert code == 4 and f"{path}:8: not valid UTF-8" in out


def test_yaml_tags_are_not_constructed(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("site: kth", "site: !!python/object/apply:os.system "
                                                    "['touch pwned']"))
    code, _out = validate(path)
    assert code == 4
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")


def test_plain_anchors_load_and_merge_keys_are_refused(tmp_path: Path) -> None:
    """What the README says about anchors, checked."""
    anchored = GOOD.replace("site: uppsala", "site: &home uppsala", 1).replace(
        "site: kth", "site: *home", 1)
    assert anchored != GOOD
    code, out = validate(write(tmp_path, anchored))
    assert code == 0, out
    merged = GOOD.replace("    site: kth\n", "    <<: {site: kth}\n", 1)
    assert merged != GOOD
    code, out = validate(write(tmp_path, merged))
    assert code == 4 and "merge keys ('<<') are not supported" in out


def test_relative_root_and_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from threetwoone.inventory import load_inventory
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(tmp_path, GOOD.replace("root: data/nas", "root: data/nas")
                 .replace("    root: /backup\n",
                          "    root: /backup\n    identity_file: ~/.ssh/id_ed25519\n"))
    inv = load_inventory(path)
    assert inv.locations["nas"].root == str(tmp_path / "data" / "nas")
    assert inv.locations["backup"].settings["identity_file"] == str(
        tmp_path / "home" / ".ssh" / "id_ed25519")


def test_audit_of_invalid_inventory_exits_4_and_audits_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("kind: sftp", "kind: ftp"))
    state = tmp_path / "state.sqlite3"
    result = run_cli("audit", str(path), "--state", str(state))
    assert result.exit_code == 4
    assert not state.exists()


def test_unknown_policy_and_bad_policy_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("policy: 3-2-1", "policy: 9-9-9"))
    code, out = validate(path)
    assert code == 4 and "no built-in policy or policy file named '9-9-9'" in out
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\nrequire:\n  copies: -1\n  colour: 2\n")
    path = write(tmp_path, GOOD.replace("policy: 3-2-1", "policy: mine.yaml"))
    code, out = validate(path)
    assert code == 4
    assert f"{bad}:3: require.copies: must be a whole number >= 0" in out
    assert f"{bad}:4: require.colour: unknown rule 'colour'" in out


def test_user_policy_file_is_applied(tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text("name: two-copies\nrequire: {copies: 2}\n")
    path = write(tmp_path, GOOD)
    code, _out = validate(path)
    assert code == 0
    result = run_cli("validate", str(path), "--policy", str(tmp_path / "two.yaml"))
    assert result.exit_code == 0


def test_policies_command_lists_rules_in_words() -> None:
    result = run_cli("policies")
    assert result.exit_code == 0
    assert "3-2-1: at least 3 intact copies" in result.stdout
    assert "no corrupt copy" in result.stdout
    shown = run_cli("policies", "show", "3-2-1")
    assert shown.exit_code == 0 and "US-CERT" in shown.stdout
    missing = run_cli("policies", "show", "nope")
    assert missing.exit_code == 4


def test_debug_shows_traceback_otherwise_none(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("kind: sftp", "kind: ftp"))
    plain = run_subprocess("validate", str(path))
    debug = run_subprocess("--debug", "validate", str(path))
    assert plain.returncode == debug.returncode == 4
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr


def test_every_format_has_a_formatter() -> None:
    from threetwoone.cli import audit
    from threetwoone.reports import FORMATTERS
    choices = next(p for p in audit.params if p.name == "fmt").type.choices  # type: ignore
    assert set(choices) == set(FORMATTERS)
    assert all(callable(FORMATTERS[name]) for name in FORMATTERS)  # each one imports


@pytest.mark.parametrize("example", sorted(
    str(p) for p in (Path(__file__).parent.parent / "examples").glob("*/inventory.yaml")))
def test_every_example_inventory_is_valid(example: str) -> None:
    result = run_cli("validate", example)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.org/x", "must be an http:// or https:// URL"),
    ("https://alice:hunter2@example.org/x", "must not hold a user name or password"),
    ("https://example.org/x?authz=hunter2", "must not have a query"),
    ("https://example.org:99999/x", "has a port that is not a number"),
])
def test_webdav_url_checked_without_echoing_secrets(tmp_path: Path, url: str,
                                                     message: str) -> None:
    text = GOOD.replace("datasets:\n", f"  dav:\n    kind: webdav\n    url: {url}\n"
                        "    media: object\n    site: nsc\ndatasets:\n", 1)
    code, out = validate(write(tmp_path, text))
    assert code == 4 and "locations.dav.url: " + message in out
    assert "hunter2" not in out and "99999" not in out


@pytest.mark.parametrize(("location", "key", "hint"), [
    ({"kind": "webdav", "url": "https://dav.example.org/x"}, "password",
     "use auth: {type: ..., password_env: NAME}"),
    ({"kind": "webdav", "url": "https://dav.example.org/x",
      "auth": {"type": "basic", "username": "u"}}, "auth.password", "use password_env"),
    ({"kind": "webdav", "url": "https://dav.example.org/x"}, "token",
     "use auth: {type: ..., token_env: NAME}"),
    ({"kind": "s3", "bucket": "b"}, "password", "use the standard AWS credential chain"),
    ({"kind": "local", "root": "/x"}, "token",
     "use an environment variable read by the tool that needs it"),
])
def test_a_secret_points_to_a_key_that_location_accepts(
        tmp_path: Path, location: dict[str, object], key: str, hint: str) -> None:
    import yaml
    spec: dict[str, object] = {**location, "media": "disk", "site": "a"}
    if "." in key:
        outer, inner = key.split(".")
        spec[outer] = {**spec[outer], inner: "hunter2"}  # type: ignore[dict-item]
    else:
        spec[key] = "hunter2"
    doc = {"version": 1, "locations": {"here": spec},
           "datasets": {"d": {"copies": [{"location": "here", "path": "d"}]}}}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out = validate(path)
    assert code == 4
    assert f"locations.here.{key}: secrets must not be written in the inventory; {hint}" \
        in out, out
    assert "hunter2" not in out
