"""Table health from Iceberg metadata via pyiceberg: no JVM, cheap enough to run on every table."""

import time
from dataclasses import asdict
from typing import Any, Optional

from lakehouse_ops.health.automation import detect
from lakehouse_ops.health.cache import AggregateCache
from lakehouse_ops.health.catalog import Tables, open_tables
from lakehouse_ops.health.scan import PartitionHealth, Readers, TableHealth, judge, read_health, small_file_limit
from lakehouse_ops.health.spark import SparkSession


def table_health(
    config: Any,
    table: str,
    tables: Optional[Tables] = None,
    policy: Any = None,
    now_ms: Optional[int] = None,
    spark: Optional[SparkSession] = None,
) -> TableHealth:
    """Health of one table, judged against the policy the config gives it (or `policy`): the one way every job
    reads a table's health. With `health.cache`, a table whose current metadata file was scanned before costs one
    pointer read and one cache record. `spark` (a callable giving the session), when a job has one: a scan with
    more than `health.spark_min_files` files to decode runs on it."""
    name = config.table_name(table)
    tables = tables or open_tables(config.catalog)
    policy = policy or config.policy_for(name)
    readers = Readers(config.health.processes, spark, config.health.spark_min_files)
    if not config.health.cache:
        return _with_automation(config, read_health(tables.load(name), name, policy, now_ms, None, readers))
    started = time.time()
    now_ms = now_ms if now_ms is not None else int(started * 1000)
    cache = AggregateCache(config.health.cache)
    catalog = config.catalog
    key = "%s|%s|%s|%s" % (catalog.name, catalog.type, catalog.uri or catalog.warehouse or "", name)
    limits = "%d|%d" % (small_file_limit(policy), policy.manifests.small_manifest_bytes)
    loaded = None
    pointer = tables.pointer(name)
    if pointer is None:
        loaded = tables.load(name)
        pointer = str(loaded.metadata_location)
    kept = cache.load_health(key, limits, pointer)
    if kept is not None:
        health = TableHealth.from_dict(kept)
        health.table, health.cached, health.manifests_read = name, True, 0
        judge(health, policy, now_ms)
        health.read_seconds = round(time.time() - started, 3)
        return _with_automation(config, health)
    loaded = loaded if loaded is not None else tables.load(name)
    health = read_health(loaded, name, policy, now_ms, cache, readers)
    cache.save_health(key, limits, str(loaded.metadata_location), asdict(health))
    return _with_automation(config, health)


def _with_automation(config: Any, health: TableHealth) -> TableHealth:
    """Other automation on the table, asked on every health read (it is not in the table's metadata)."""
    if config.health.check_automation:
        health.automation, health.automation_overlaps = detect(config.catalog, health.table, health.location)
    return health


__all__ = ["PartitionHealth", "Readers", "TableHealth", "read_health", "open_tables", "table_health"]
