"""Shared fixtures: each concern keeps its fixtures in its own module, gathered here."""
from smtp_lab import smtp_server, smtp_certificate, program_dir  # noqa: F401
from netlab import netlab  # noqa: F401
