"""One lifecycle for every job: load config -> plan -> build session (only if needed) -> execute -> verify ->
report -> exit code. Only this layer (and the CLI over it) turns exceptions into exit codes."""

from lakehouse_ops.jobs import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from lakehouse_ops.runner.maintain import MaintenanceRunner, resolve_tables

__all__ = ["MaintenanceRunner", "resolve_tables", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]
