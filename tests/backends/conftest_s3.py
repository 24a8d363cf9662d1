"""S3 fixtures for the backend tests: a moto server on loopback (see servers/moto_s3.py)."""

from servers.moto_s3 import aws_env, moto_s3, moto_s3_private, s3_fault_proxy

__all__ = ["aws_env", "moto_s3", "moto_s3_private", "s3_fault_proxy"]
