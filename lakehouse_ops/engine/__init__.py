"""Spark session building and catalog configuration."""
from lakehouse_ops.engine.session import build_session, catalog_conf, session_conf

__all__ = ["build_session", "catalog_conf", "session_conf"]
