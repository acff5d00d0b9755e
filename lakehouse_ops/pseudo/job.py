"""The pseudonymize and reidentify jobs: a source (Iceberg table or files) -> converted columns -> an Iceberg
table, in one commit. If any value cannot be converted the job fails before the commit, so the target is
unchanged and plaintext never lands where pseudonyms were expected."""

import time
from typing import Any, Callable, Dict, Optional, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.config.pseudo import PseudoJob, PseudonymizationConfig
from lakehouse_ops.engine.history import record_run
from lakehouse_ops.engine.session import LazySession
from lakehouse_ops.errors import ConfigError, LakehouseOpsError, first_line
from lakehouse_ops.pseudo.spark import pseudonymize, reidentify
from lakehouse_ops.sqltext import table_ref

JOB_PROPERTY = "lakehouse-ops.pseudo-job"


class PseudoJobError(LakehouseOpsError):
    """The job failed before its commit; the target is unchanged."""


def _job(config: Config, name: str) -> Tuple[PseudonymizationConfig, PseudoJob]:
    section = config.section("pseudonymization")
    if name not in section.jobs:
        raise ConfigError(
            "no pseudonymization job '%s' in %s (jobs: %s)"
            % (name, config.source, ", ".join(sorted(section.jobs)) or "none")
        )
    return section, section.jobs[name]


def _table_exists(spark: Any, ref: str) -> bool:
    try:
        spark.table(ref).schema
        return True
    except Exception:
        return False


def _write(spark: Any, df: Any, ref: str, mode: str, tag: str) -> Tuple[int, int]:
    writer = df.writeTo(ref).option("snapshot-property." + JOB_PROPERTY, tag)
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
    """Run pseudonymization job `name` (direction 'reidentify': from its target into `target`)."""
    section, job = _job(config, name)
    if direction == "reidentify" and not target:
        raise ConfigError("reidentify writes plaintext: name the table to write it to (--target)")
    out_table = config.table_name(job.target if direction == "pseudonymize" else str(target))
    started = time.time()
    spark = LazySession(config, spark, session_factory).get()
    catalog = config.catalog.name
    if direction == "pseudonymize":
        if job.source.table:
            df = spark.table(table_ref(catalog, config.table_name(job.source.table)))
        else:
            df = spark.read.format(job.source.format).load(job.source.path)
        converted = pseudonymize(df, job.columns, section.settings(), job.deterministic)
    else:
        df = spark.table(table_ref(catalog, config.table_name(job.target)))
        converted = reidentify(df, job.columns, section.settings())
    try:
        snapshot, rows = _write(
            spark, converted, table_ref(catalog, out_table), job.write_mode, "%s:%s" % (direction, name)
        )
    except Exception as exc:
        raise PseudoJobError(
            "%s job '%s' failed; %s is unchanged: %s" % (direction, name, out_table, first_line(exc))
        ) from None
    report = {
        "ok": True,
        "job": name,
        "direction": direction,
        "mode": section.mode,
        "columns": list(job.columns),
        "source": job.source.table or job.source.path if direction == "pseudonymize" else job.target,
        "target": out_table,
        "rows": rows,
        "snapshot_id": snapshot,
        "duration_s": round(time.time() - started, 3),
    }
    record_run(lambda: spark, config, "pseudonymize", report)
    return report
