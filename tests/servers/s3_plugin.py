"""The S3 fixtures (moto's server, fake credentials) as a pytest plugin, for
tests outside tests/backends/ (``pytest_plugins = ["servers.s3_plugin"]``).

A module of its own for the reason given in webdav_plugin.py: servers.moto_s3
is imported (by tests/backends/conftest.py and by test modules) before pytest
could register it as a plugin and rewrite its asserts, and pytest warns.
"""

from backends.conftest_s3 import *  # noqa: F403
