"""One small hierarchy, so callers can catch everything from lakehouse-ops at once.

The runner maps these to exit codes: ConfigError -> 2 (nothing was started), anything else -> 1.
"""

import re

# Errors raised inside Python workers reach the driver as pages of trace; these markers find their own line.
WORKER_ERRORS = ("PseudoServiceError:", "TokenError:", "KeyMaterialError:", "ConfigError:")
# Py4J's and PySpark's wrapper lines say only that something failed somewhere else.
_WRAPPER_LINES = ("An error occurred while calling", "An exception was thrown from the Python worker")


def first_line(exc: BaseException) -> str:
    """The line of an exception's text that says what went wrong: the line of one of our errors raised in a
    Python worker if there is one, else the first non-blank line (Spark and Py4J errors run to pages)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for marker in WORKER_ERRORS:
        for line in lines:
            if marker in line:
                return line[line.index(marker) :]
    said = [line for line in lines if not line.startswith(_WRAPPER_LINES)]
    return (said or lines or [type(exc).__name__])[0]


_QUOTED = re.compile(r"""'[^'\n]*'|"[^"\n]*"|\[[^\]\n]*\]|\{[^}\n]*\}|(?<=: )[^\s,;:]{3,}$""")


def without_values(text: str) -> str:
    """Error text with what may quote a record left out: anything in quotes, brackets or braces (how Spark,
    Arrow and Python quote values) and a trailing token after a colon. For errors of jobs that hold protected
    values: the reason stays readable (`Could not convert '…' with type str: tried to convert to int64`)."""
    return _QUOTED.sub("…", text)


class LakehouseOpsError(Exception):
    """Base class of every error lakehouse-ops raises on purpose."""


class ConfigError(LakehouseOpsError):
    """The config file or an override is wrong; raised before any Spark session starts."""


class PolicyError(ConfigError):
    """A table policy value is out of range or inconsistent."""


class CatalogError(LakehouseOpsError):
    """A table or catalog could not be found or read."""


class EngineError(LakehouseOpsError):
    """Spark could not be started (missing Java, missing Iceberg jar, bad catalog settings)."""


class MaintenanceError(LakehouseOpsError):
    """A maintenance action failed or was stopped by a safety guard."""


class SafetyError(MaintenanceError):
    """A guard refused a destructive step (budget exceeded, scope violation, age too small)."""


class VerificationError(MaintenanceError):
    """Data before and after a rewrite differ."""


class IngestError(LakehouseOpsError):
    """Ingest could not proceed (queue, ledger or commit trouble); messages stay on the queue."""
