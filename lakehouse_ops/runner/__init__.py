"""One lifecycle for every job: load config -> plan -> build session (only if needed) -> execute -> verify ->
report -> exit code. Only this layer (and the CLI over it) turns exceptions into exit codes."""
from lakehouse_ops.runner.maintain import MaintenanceRunner, resolve_tables

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

__all__ = ["MaintenanceRunner", "resolve_tables", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]
