"""Spark session building and catalog configuration."""

from lakehouse_ops.engine.session import LazySession, build_session, catalog_conf, session_conf

__all__ = ["LazySession", "build_session", "catalog_conf", "session_conf"]
