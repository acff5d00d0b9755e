"""Text from and to a local path or an s3:// URI: configs, subject lists, reports and receipts."""

import json
import os
from typing import Any

from lakehouse_ops.errors import ConfigError

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


def is_s3(location: str) -> bool:
    return location.startswith(S3_SCHEMES)


def read_text(location: str, what: str = "file") -> str:
    """The text at a local path or s3:// URI; a local file that cannot be read is a ConfigError naming `what`."""
    if is_s3(location):
        from lakehouse_ops.aws.s3 import read_text as read_s3

        text: str = read_s3(location)
        return text
    try:
        with open(location, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError("cannot read %s %s: %s" % (what, location, exc.strerror or exc)) from None


def write_text(location: str, text: str) -> None:
    """Write `text` to a local path (its directory created) or an s3:// URI."""
    if is_s3(location):
        from lakehouse_ops.aws.s3 import write_text as write_s3

        write_s3(location, text)
        return
    parent = os.path.dirname(os.path.abspath(location))
    os.makedirs(parent, exist_ok=True)
    with open(location, "w", encoding="utf-8") as handle:
        handle.write(text)


def to_json(document: Any) -> str:
    """A report or receipt as JSON text (indented; values JSON lacks, such as datetimes, as strings)."""
    return json.dumps(document, indent=2, sort_keys=False, default=str)


def write_json(location: str, document: Any) -> None:
    write_text(location, to_json(document) + "\n")
