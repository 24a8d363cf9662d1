"""The WebDAV fixtures as a pytest plugin, for tests outside tests/backends/
(``pytest_plugins = ["servers.webdav_plugin"]``).

A module of its own, because tests/backends/conftest.py has already imported
backends.conftest_webdav by then, and pytest warns when a plugin module was
imported before it could rewrite its asserts.
"""

from backends.conftest_webdav import *  # noqa: F403
