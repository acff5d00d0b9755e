"""The `lakehouse-ops` command: base (the group, config, exit codes), tables (health, plan, maintain, policy),
ingest (the SQS job and its status), jobs (pseudonymize, reidentify, erase, demos, the reference service),
ship (package, submit, schedule).

Exit codes: 0 success, 1 a table or action failed, 2 usage or configuration error (nothing was started).
"""

from typing import List, Optional

from lakehouse_ops.cli import ingest, jobs, ship, tables  # noqa: F401  (each registers its commands on `cli`)
from lakehouse_ops.cli.base import cli


def main(argv: Optional[List[str]] = None) -> None:
    cli.main(args=argv, prog_name="lakehouse-ops")


__all__ = ["cli", "main"]
