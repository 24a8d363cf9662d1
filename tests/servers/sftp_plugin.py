"""The SFTP fixtures (a real OpenSSH sshd, an isolated client home) as a pytest
plugin, for tests outside tests/backends/ (``pytest_plugins =
["servers.sftp_plugin"]``); a module of its own for the reason given in
webdav_plugin.py."""

from backends.conftest_sftp import *  # noqa: F403
