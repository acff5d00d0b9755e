"""Table health from Iceberg metadata via pyiceberg: no JVM, cheap enough to run on every table."""

from typing import Any, Optional

from lakehouse_ops.health.cache import AggregateCache
from lakehouse_ops.health.catalog import Tables, open_tables
from lakehouse_ops.health.scan import PartitionHealth, TableHealth, read_health


def table_health(
    config: Any, table: str, tables: Optional[Tables] = None, policy: Any = None, now_ms: Optional[int] = None
) -> TableHealth:
    """Health of one table, judged against the policy the config gives it (or `policy`): the one way every job
    reads a table's health."""
    name = config.table_name(table)
    tables = tables or open_tables(config.catalog)
    cache = AggregateCache(config.health.cache) if config.health.cache else None
    policy = policy or config.policy_for(name)
    return read_health(tables.load(name), name, policy, now_ms, cache, config.health.processes)


__all__ = ["PartitionHealth", "TableHealth", "read_health", "open_tables", "table_health"]
