"""Logging set-up: readable text in a terminal, one JSON object per line on a cluster.

Nothing here formats secrets: callers log names and counts, never values.
"""

import json
import logging
import os
import sys
import time
from typing import Optional, TextIO

LOGGER_NAME = "lakehouse_ops"

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={...}` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}
        line = "%s %-7s %s" % (
            time.strftime("%H:%M:%S", time.localtime(record.created)),
            record.levelname,
            record.getMessage(),
        )
        if extras:
            line += "  " + " ".join("%s=%s" % (k, v) for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def choose_format(requested: Optional[str] = None) -> str:
    """`json` on a cluster (no terminal) or when asked; `text` in a terminal."""
    fmt = requested or os.environ.get("LAKEHOUSE_OPS_LOG_FORMAT")
    if fmt in ("json", "text"):
        return fmt
    return "text" if sys.stderr.isatty() else "json"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (notebooks and test runners swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure(fmt: Optional[str] = None, level: int = logging.INFO) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = []
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if choose_format(fmt) == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(LOGGER_NAME + "." + name)
