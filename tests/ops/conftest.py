"""The activation tests' SMTP server (aiosmtpd), for the production stack test."""

from activation.conftest import smtp_server  # noqa: F401 - a fixture, used by name
