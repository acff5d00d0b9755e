"""The embedded demo (the whole pipeline), and the streaming-like table generator tests and benchmarks share.

The generator commits the way streaming writers do: many small appends, each spraying small files over the
current day and a few late rows over older days, with manifest merging off so manifests pile up.
"""
import os
import time

from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref

log = get_logger("demo")

DEMO_SCHEMA = ("event_time TIMESTAMP, customer_id STRING, provider STRING, status INT, bytes_sent BIGINT, "
               "url STRING")
BASE_DAY = "2024-05-01"


def create_streaming_table(spark, catalog, table, days=3, commits=12, rows_per_commit=2000, files_per_commit=4,
                           late_fraction=0.1, customers=500, replace=True, extra_properties=None):
    """Create `table` day-partitioned on event_time and fill it with `commits` small appends.

    Commit i writes mostly into day (i mod days), plus `late_fraction` of rows spread over earlier days.
    """
    ref = table_ref(catalog, table)
    namespace = table.rsplit(".", 1)[0]
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(catalog, namespace))
    if replace:
        spark.sql("DROP TABLE IF EXISTS %s PURGE" % ref)
    props = {"commit.manifest-merge.enabled": "false", "write.distribution-mode": "none",
             "format-version": "2"}
    props.update(extra_properties or {})
    spark.sql("CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg PARTITIONED BY (days(event_time)) "
              "TBLPROPERTIES (%s)" % (ref, DEMO_SCHEMA,
                                      ", ".join("'%s'='%s'" % kv for kv in sorted(props.items()))))
    for i in range(commits):
        day = i % days
        df = spark.range(rows_per_commit).selectExpr(
            # Mostly "today"; late rows land on an earlier day chosen at random.
            "CASE WHEN rand(%d) < %f AND %d > 0 THEN CAST(floor(rand(%d) * %d) AS INT) ELSE %d END AS day_off"
            % (i, late_fraction, day, i + 7, max(day, 1), day),
            "id")
        df = df.selectExpr(
            "timestamp_seconds(unix_timestamp(TIMESTAMP '%s 00:00:00') + day_off * 86400 "
            "+ CAST(rand(%d) * 86399 AS BIGINT)) AS event_time" % (BASE_DAY, i + 11),
            "concat('c', lpad(CAST(CAST(rand(%d) * %d AS INT) AS STRING), 5, '0')) AS customer_id" % (i + 13,
                                                                                                    customers),
            "element_at(array('edge-a', 'edge-b', 'edge-c'), CAST(id % 3 AS INT) + 1) AS provider",
            "CAST(element_at(array(200, 200, 200, 304, 404, 500), CAST(id % 6 AS INT) + 1) AS INT) AS status",
            "CAST(rand(%d) * 100000 AS BIGINT) AS bytes_sent" % (i + 17),
            "concat('/assets/', CAST(id % 997 AS STRING), '.jpg') AS url")
        df.repartition(files_per_commit).writeTo(ref).append()
    return ref


def plant_orphan(location, name="orphan-from-failed-job.parquet", age_hours=120.0, size=4096):
    """Write a file no snapshot references under the table's data directory, aged `age_hours`."""
    path = os.path.join(location, "data", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"\0" * size)
    stamp = time.time() - age_hours * 3600
    os.utime(path, (stamp, stamp))
    return path


DEV_KEY_FILE = "dev-keys.json"
DEV_API_KEY = "dev-only-api-key"


def _check_local(config):
    from lakehouse_ops.errors import ConfigError
    from lakehouse_ops.ingest.demo import require_local_ingest
    if config.catalog.type != "hadoop" or "://" in (config.catalog.warehouse or ""):
        raise ConfigError("the demo writes a local warehouse: use a config with catalog type 'hadoop' and a local "
                          "warehouse path, such as conf/local.yaml")
    require_local_ingest(config, "the demo")
    if config.ingest.pseudonymize is None or config.pseudonymization is None:
        raise ConfigError("the demo pseudonymizes during ingest: it needs ingest.pseudonymize and a "
                          "'pseudonymization' section, as in conf/local.yaml")


def _small_batches(config, objects):
    """The config with ingest batches of at most `objects` objects: many small commits, as streaming makes."""
    import dataclasses
    ingest = config.ingest.model_copy(update={"batch": config.ingest.batch.model_copy(
        update={"max_objects": objects})})
    return dataclasses.replace(config, ingest=ingest)


def run_demo(config, files=24, rows=300, objects_per_batch=3, as_json=False):
    """The whole pipeline on the embedded default: landing files and their events on a local SQS (moto's server),
    ingest with pseudonymization through the local reference service, then maintenance of the table."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.engine import build_session
    from lakehouse_ops.health import open_tables, read_health
    from lakehouse_ops.ingest.demo import local_sqs, prepare_landing
    from lakehouse_ops.ingest.job import IngestJob
    from lakehouse_ops.pseudo.service import ensure_local_service
    from lakehouse_ops.runner import MaintenanceRunner
    from lakehouse_ops.runner.report import print_actions, print_compare, print_health, print_ingest, to_json

    _check_local(config)
    pseudo = config.pseudonymization
    if pseudo.mode == "service" and pseudo.api_key_env:
        # Before Spark starts, so its Python workers inherit it (a cluster sets it with spark.executorEnv.*).
        os.environ.setdefault(pseudo.api_key_env, DEV_API_KEY)
    sqs_server = local_sqs(config.ingest.queue_url)
    service = ensure_local_service(pseudo.service_url, DEV_KEY_FILE, pseudo.api_key_env) \
        if pseudo.mode == "service" else None
    try:
        spark = build_session(config)
        target = prepare_landing(config, spark, client("sqs"), files, rows, replace=True)
        ingest = IngestJob(_small_batches(config, objects_per_batch), spark=spark).run(until_empty=True)
        columns = list(config.ingest.pseudonymize.columns)
        sample = [r.asDict() for r in spark.table(table_ref(config.catalog.name, target))
                  .select(*(columns + ["status", "url"])).limit(3).collect()]
        catalog_tables = open_tables(config.catalog)
        before = read_health(catalog_tables.load(target), target, config.policy_for(target))
        orphan = plant_orphan(before.location)
        log.info("planted an orphan file five days old, as a failed job would leave", extra={"path": orphan})
        if not as_json:
            print_ingest(ingest)
            print("pseudonymized columns %s; a few rows as they landed:" % ", ".join(columns))
            for row in sample:
                print("  %s" % row)
            print_health([before.to_dict()])
        runner = MaintenanceRunner(config, spark=spark, catalog_tables=catalog_tables)
        if not as_json:
            print_actions(runner.run([target], dry_run=True))
        maintenance = runner.run([target])
        report = {"ok": bool(ingest["ok"] and maintenance["ok"]), "target": target,
                  "pseudonymized_columns": columns, "ingest": ingest, "maintenance": maintenance}
        if as_json:
            print(to_json(report))
        else:
            print_actions(maintenance)
            entry = maintenance["tables"][0]
            if entry.get("after"):
                print_compare(entry["before"], entry["after"])
        return report
    finally:
        if service is not None:
            service.shutdown()
        if sqs_server is not None:
            sqs_server.terminate()
