"""The package version: setup.cfg reads it from here (one place)."""

__version__ = "0.1.0"
