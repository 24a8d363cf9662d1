"""Fixtures for the backend tests, one module per backend.

``pytest_plugins`` is not allowed in a conftest below the top level (pytest
refuses to collect), so each backend's fixtures are re-exported here.
"""

from backends.conftest_s3 import *  # noqa: F403  (S3: moto server, fault proxy)
from backends.conftest_sftp import *  # noqa: F403  (SFTP: OpenSSH sshd)
from backends.conftest_webdav import *  # noqa: F403  (WebDAV: XRootD and WsgiDAV servers)
