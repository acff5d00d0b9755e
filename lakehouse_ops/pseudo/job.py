"""The pseudonymize and reidentify jobs: a source (Iceberg table or files) -> converted columns -> an Iceberg
table, in one commit. If any value cannot be converted the job fails before the commit, so the target is
unchanged and plaintext never lands where pseudonyms were expected.

Pseudonymize jobs are exactly-once and incremental (`write_mode: append`, the default; see incremental.py): each
commit records how far into its source it converted, and the next run converts only what came after, so a
scheduled job, rerun or retried, never writes a row twice. One run of a job at a time (a lease). Re-identified
rows never go to the job's own table or to any table that holds pseudonyms."""

import time
from typing import Any, Callable, Dict, Optional, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.config.pseudo import PseudoJob, PseudonymizationConfig
from lakehouse_ops.engine.history import record_run
from lakehouse_ops.engine.session import LazySession
from lakehouse_ops.engine.tables import jvm_table
from lakehouse_ops.errors import ConfigError, LakehouseOpsError, first_line
from lakehouse_ops.lease import Leases
from lakehouse_ops.paths import same_location, within
from lakehouse_ops.pseudo import incremental
from lakehouse_ops.pseudo.spark import pinned, pseudonymize, reidentify
from lakehouse_ops.sqltext import quote_string, table_ref

JOB_PROPERTY = incremental.JOB_PROPERTY
# A table property naming the columns that hold pseudonyms (set by pseudonymize jobs and ingest): re-identified
# rows are never written to such a table.
PSEUDONYMIZED = "lakehouse-ops.pseudonymized-columns"


LEASE_MINUTES = 10  # a job run's lease, renewed while it works


class PseudoJobError(LakehouseOpsError):
    """The job failed before its commit; the target is unchanged."""


def _job(config: Config, name: str) -> Tuple[PseudonymizationConfig, PseudoJob]:
    section = config.section("pseudonymization")
    if name not in section.jobs:
        raise ConfigError(
            "no pseudonymization job '%s' in %s (jobs: %s)"
            % (name, config.source, ", ".join(sorted(section.jobs)) or "none")
        )
    job = section.jobs[name]
    if job.source.table and _same_table(config, job.source.table, job.target):
        raise ConfigError(
            "pseudonymization job '%s' writes to its own source %s: its tokens would be converted again on every run "
            "and the table would hold plaintext and tokens; write to another table" % (name, job.target)
        )
    return section, job


def _same_table(config: Config, a: str, b: str) -> bool:
    """Whether two names name one table (catalogs such as Glue fold case; quoting does not change a name)."""

    def key(name: str) -> str:
        return ".".join(part.strip("`").lower() for part in config.table_name(name).split("."))

    return key(a) == key(b)


def _table_exists(spark: Any, ref: str) -> bool:
    try:
        spark.table(ref).schema
        return True
    except Exception:
        return False


def _write(spark: Any, df: Any, ref: str, mode: str, properties: Dict[str, str]) -> Tuple[int, int]:
    writer = df.writeTo(ref)
    for key, value in properties.items():
        writer = writer.option("snapshot-property." + key, value)
    if not _table_exists(spark, ref):
        writer.using("iceberg").create()
    elif mode == "overwrite":
        from pyspark.sql import functions as F

        writer.overwrite(F.lit(True))
    else:
        writer.append()
    row = spark.sql("SELECT snapshot_id, summary FROM %s.snapshots ORDER BY committed_at DESC LIMIT 1" % ref).collect()[
        0
    ]
    return int(row.snapshot_id), int(row.summary.get("added-records", 0))


def run(
    config: Config,
    name: str,
    direction: str = "pseudonymize",
    target: Optional[str] = None,
    spark: Any = None,
    session_factory: Optional[Callable[[], Any]] = None,
) -> Dict[str, Any]:
    """Run pseudonymization job `name` (direction 'reidentify': from its target into `target`), under the job's
    lease: one run of a job at a time."""
    section, job = _job(config, name)
    if direction == "reidentify":
        _check_plaintext_target(config, job, target)
    out_table = config.table_name(job.target if direction == "pseudonymize" else str(target))
    started = time.time()
    spark = LazySession(config, spark, session_factory).get()
    leases = job_leases(config)
    lease = "pseudo-%s-%s" % (direction, name)
    taken, holder = leases.acquire(lease)
    if not taken:
        raise PseudoJobError(
            "%s job '%s' is running elsewhere (%s holds its lease until %s); nothing done"
            % (direction, name, (holder or {}).get("owner"), (holder or {}).get("expires_at"))
        )
    try:
        report = _convert(config, spark, section, job, name, direction, out_table)
    finally:
        leases.release(lease)
    report["duration_s"] = round(time.time() - started, 3)
    record_run(lambda: spark, config, "pseudonymize", report)
    return report


def _convert(
    config: Config, spark: Any, section: Any, job: PseudoJob, name: str, direction: str, out_table: str
) -> Dict[str, Any]:
    catalog = config.catalog.name
    out_ref = table_ref(catalog, out_table)
    tag = "%s:%s" % (direction, name)
    report: Dict[str, Any] = {
        "ok": True,
        "job": name,
        "direction": direction,
        "mode": section.mode,
        "columns": list(job.columns),
        "source": job.source.table or job.source.path if direction == "pseudonymize" else job.target,
        "target": out_table,
        "write_mode": job.write_mode,
    }
    if direction == "reidentify":
        if _table_exists(spark, out_ref) and PSEUDONYMIZED in _properties(spark, out_ref):
            raise ConfigError(
                "reidentify --target %s holds pseudonyms (%s): plaintext never goes there" % (out_table, PSEUDONYMIZED)
            )
        new = incremental.new_rows(spark, catalog, config.table_name(job.target), None, "", "append", out_ref, tag)
    else:
        source = config.table_name(job.source.table) if job.source.table else None
        if job.source.path:
            _not_inside_target(spark, catalog, out_table, job.source.path, name)
        new = incremental.new_rows(
            spark, catalog, source, job.source.path, job.source.format, job.write_mode, out_ref, tag
        )
    report["source_range"] = new.describe()
    if new.frame is None:
        report.update(rows=0, snapshot_id=None, up_to_date=True)
        return report
    if direction == "reidentify":
        converted = reidentify(new.frame, job.columns, section.settings())
    else:
        converted = pseudonymize(new.frame, job.columns, pinned(section.settings()), job.deterministic)
    properties = dict(new.properties, **{JOB_PROPERTY: tag})
    incremental.still_from(spark, out_ref, tag, new)  # no other run converted the same rows meanwhile
    try:
        snapshot, rows = _write(
            spark, converted, out_ref, job.write_mode if direction == "pseudonymize" else "append", properties
        )
    except Exception as exc:
        raise PseudoJobError(
            "%s job '%s' failed; %s is unchanged: %s" % (direction, name, out_table, first_line(exc))
        ) from None
    if direction == "pseudonymize":
        mark_pseudonymized(spark, out_ref, job.columns)
    report.update(rows=rows, snapshot_id=snapshot)
    return report


def _not_inside_target(spark: Any, catalog: str, target: str, path: str, name: str) -> None:
    """A path source must not overlap the target's location: the job would read the tokens it wrote."""
    table = jvm_table(spark, catalog, target)
    location = str(table.location()) if table is not None else None
    if location and (within(path, location) or within(location, path) or same_location(path, location)):
        raise ConfigError(
            "pseudonymization job '%s' reads %s, which overlaps its target's location %s: it would convert its own "
            "tokens again; read from another place" % (name, path, location)
        )


def _properties(spark: Any, ref: str) -> Dict[str, str]:
    return {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES %s" % ref).collect()}


def mark_pseudonymized(spark: Any, ref: str, columns: Any) -> None:
    """Say in the table's properties which columns hold pseudonyms: a re-identification never writes into it."""
    wanted = ",".join(sorted(columns))
    if _properties(spark, ref).get(PSEUDONYMIZED) == wanted:
        return
    spark.sql("ALTER TABLE %s SET TBLPROPERTIES ('%s' = %s)" % (ref, PSEUDONYMIZED, quote_string(wanted)))


def _check_plaintext_target(config: Config, job: PseudoJob, target: Optional[str]) -> None:
    """Re-identified rows go to a table of their own: named, and neither the job's source, nor its target, nor a
    table that holds pseudonyms."""
    if not target:
        raise ConfigError("reidentify writes plaintext: name the table to write it to (--target)")
    name = config.table_name(target)
    if _same_table(config, name, job.target):
        raise ConfigError("reidentify --target %s is the job's pseudonymized table: plaintext never goes there" % name)
    if job.source.table and _same_table(config, name, job.source.table):
        raise ConfigError(
            "reidentify --target %s is the job's source: the next run would pseudonymize the rows again "
            "(write plaintext to a table of its own)" % name
        )
    erasure = config.erasure.tables if config.erasure is not None else []
    protected = [t.table for t in erasure if t.holds == "pseudonyms"]
    if config.ingest is not None and config.ingest.pseudonymize is not None:
        protected.append(config.ingest.target_table)
    if any(_same_table(config, name, other) for other in protected):
        raise ConfigError(
            "reidentify --target %s holds pseudonyms (erasure or ingest config): plaintext never goes there" % name
        )


def job_leases(config: Config) -> Leases:
    """Where jobs take their leases: ship.leases (an s3:// prefix) when set, else under the catalog's warehouse."""
    ship = config.ship
    if ship is not None and ship.leases:
        return Leases(ship.leases, ship.lease_minutes)
    if not config.catalog.warehouse:
        raise ConfigError(
            "%s: ship.leases is needed (an s3:// prefix where job runs take leases) when the catalog has no "
            "warehouse" % config.source
        )
    return Leases(config.catalog.warehouse.rstrip("/") + "/_lakehouse_ops/leases", LEASE_MINUTES)
