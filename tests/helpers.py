"""Helpers for the Spark tests (tests/ is on sys.path through conftest.py)."""

from chispa import assert_df_equality

from lakehouse_ops.health import open_tables, read_health
from lakehouse_ops.maintenance.verify import current_snapshot_id
from lakehouse_ops.runner import MaintenanceRunner
from lakehouse_ops.sqltext import table_ref

CATALOG = "lake"
# Keys every health report carries (the documented JSON contract of `health --json` and of reports).
HEALTH_KEYS = (
    "table",
    "data_files",
    "data_bytes",
    "small_files",
    "delete_files",
    "records",
    "snapshots",
    "manifests",
    "metadata_files",
    "metadata_log_files",
    "metadata_files_listed",
    "partitions",
)
DAY_MS = 24 * 3600 * 1000


def days_later(days):
    """A clock `days` days ahead of the real one: maintenance judges ages as it would then."""
    from lakehouse_ops.units import now_ms

    return lambda: now_ms() + int(days * DAY_MS)


def ref(table):
    return table_ref(CATALOG, table)


def snapshot_id(spark, table):
    return current_snapshot_id(spark, CATALOG, table)


def at(spark, table, snap):
    return spark.sql("SELECT * FROM %s VERSION AS OF %d" % (ref(table), snap))


def assert_same_rows(spark, table, before_snapshot):
    """Rows of the current table equal those of `before_snapshot`, whatever their order."""
    assert_df_equality(at(spark, table, before_snapshot), spark.table(ref(table)), ignore_row_order=True)


def health(config, table):
    return read_health(open_tables(config.catalog).load(table), table, config.policy_for(table))


def maintain(spark, config, table, only=None, dry_run=False, clock=None):
    """Run maintenance on one table with the shared session, at the instant `clock()` says (epoch ms; default
    now); returns (table entry, {action: result})."""
    kwargs = {"clock": clock} if clock is not None else {}
    report = MaintenanceRunner(config, spark=spark, only=only, **kwargs).run([table], dry_run=dry_run)
    entry = report["tables"][0]
    return entry, {a["action"]: a for a in entry["actions"]}


def data_files(spark, table):
    return {r.file_path for r in spark.sql("SELECT file_path FROM %s.files WHERE content = 0" % ref(table)).collect()}
