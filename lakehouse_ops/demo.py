"""The embedded demo: the whole pipeline on the local default (ingest with pseudonymization, then maintenance)."""

import os
import time
from typing import Any, Dict, List, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.health import TableHealth
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref

log = get_logger("demo")


def _failed_job_output(location: str, age_hours: float = 120.0) -> str:
    """What a failed job leaves behind: a file under the table's data directory that no snapshot references,
    five days old (old enough for orphan removal)."""
    path = os.path.join(location, "data", "orphan-from-failed-job.parquet")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"\0" * 4096)
    stamp = time.time() - age_hours * 3600
    os.utime(path, (stamp, stamp))
    return path


DEV_KEY_FILE = "dev-keys.json"
DEV_API_KEY = "dev-only-api-key"
REPORT_PAGE = "report.html"  # the fleet page the demo writes, next to ./warehouse


def _check_local(config: Config) -> None:
    from lakehouse_ops.errors import ConfigError
    from lakehouse_ops.ingest.demo import require_local_ingest

    if config.catalog.type != "hadoop" or "://" in (config.catalog.warehouse or ""):
        raise ConfigError(
            "the demo writes a local warehouse: use a config with catalog type 'hadoop' and a local "
            "warehouse path, such as conf/local.yaml"
        )
    require_local_ingest(config, "the demo")
    if config.section("ingest").pseudonymize is None or config.pseudonymization is None:
        raise ConfigError(
            "the demo pseudonymizes during ingest: it needs ingest.pseudonymize and a "
            "'pseudonymization' section, as in conf/local.yaml"
        )


def _small_batches(config: Config, objects: int) -> Config:
    """The config with ingest batches of at most `objects` objects: many small commits, as streaming makes."""
    import dataclasses

    section = config.section("ingest")
    ingest = section.model_copy(update={"batch": section.batch.model_copy(update={"max_objects": objects})})
    return dataclasses.replace(config, ingest=ingest)


def _ingest_step(
    config: Config, spark: Any, target: str, objects_per_batch: int, as_json: bool
) -> Tuple[Dict[str, Any], List[str], TableHealth]:
    """Ingest in small batches, show a few pseudonymized rows and the table's health, and leave an orphan behind
    as a failed job would; returns (ingest report, pseudonymized columns, health before maintenance)."""
    from lakehouse_ops.health import table_health
    from lakehouse_ops.ingest.job import IngestJob
    from lakehouse_ops.runner.report import print_health, print_ingest

    ingest = IngestJob(_small_batches(config, objects_per_batch), spark=spark).run(until_empty=True)
    columns = list(config.section("ingest").pseudonymize.columns)
    sample = [
        r.asDict()
        for r in spark.table(table_ref(config.catalog.name, target))
        .select(*(columns + ["status", "url"]))
        .limit(3)
        .collect()
    ]
    before = table_health(config, target)
    orphan = _failed_job_output(before.location)
    log.info("planted an orphan file five days old, as a failed job would leave", extra={"path": orphan})
    if not as_json:
        print_ingest(ingest)
        print("pseudonymized columns %s; a few rows as they landed:" % ", ".join(columns))
        for row in sample:
            print("  %s" % row)
        print_health([before.to_dict()])
    return ingest, columns, before


def run_demo(
    config: Config, files: int = 24, rows: int = 300, objects_per_batch: int = 3, as_json: bool = False
) -> Dict[str, Any]:
    """The whole pipeline on the embedded default: landing files and their events on a local SQS (moto's server),
    ingest with pseudonymization through the local reference service, then maintenance of the table."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.engine import build_session
    from lakehouse_ops.ingest.demo import local_sqs, prepare_landing
    from lakehouse_ops.pseudo.local import ensure_local_service
    from lakehouse_ops.runner import MaintenanceRunner
    from lakehouse_ops.runner.fleet_page import write_page
    from lakehouse_ops.runner.report import print_actions, print_compare, to_json

    _check_local(config)
    pseudo = config.section("pseudonymization")
    if pseudo.mode == "service" and pseudo.api_key_env:
        # Before Spark starts, so its Python workers inherit it (a cluster sets it with spark.executorEnv.*).
        os.environ.setdefault(pseudo.api_key_env, DEV_API_KEY)
    sqs_server = local_sqs(config.section("ingest").queue_url)
    service = (
        ensure_local_service(pseudo.service_url, DEV_KEY_FILE, pseudo.api_key_env) if pseudo.mode == "service" else None
    )
    try:
        spark = build_session(config)
        target = prepare_landing(config, spark, client("sqs"), files, rows, replace=True)
        ingest, columns, before = _ingest_step(config, spark, target, objects_per_batch, as_json)
        runner = MaintenanceRunner(config, spark=spark)
        if not as_json:
            print_actions(runner.run([target], dry_run=True))
        maintenance = runner.run([target])
        page = write_page(config, REPORT_PAGE, [target])
        report = {
            "ok": bool(ingest["ok"] and maintenance["ok"]),
            "target": target,
            "pseudonymized_columns": columns,
            "ingest": ingest,
            "maintenance": maintenance,
            "report_page": page,
        }
        if as_json:
            print(to_json(report))
        else:
            print_actions(maintenance)
            entry = maintenance["tables"][0]
            if entry.get("after"):
                print_compare(entry["before"], entry["after"])
            print("Fleet report with the run history: %s (lakehouse-ops report --html PATH)" % page["path"])
        return report
    finally:
        if service is not None:
            service.shutdown()
        if sqs_server is not None:
            sqs_server.terminate()


def run_ingest_demo(config: Config, files: int = 20, rows: int = 500, as_json: bool = False) -> Dict[str, Any]:
    """Landing files and their S3 events on a local SQS (moto's server), ingested into the target table."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.engine import build_session
    from lakehouse_ops.ingest.demo import local_sqs, prepare_landing, require_local_ingest
    from lakehouse_ops.ingest.job import IngestJob
    from lakehouse_ops.runner.report import print_health, print_ingest, to_json

    require_local_ingest(config, "demo-ingest")
    server = local_sqs(config.section("ingest").queue_url)
    try:
        sqs = client("sqs")
        spark = build_session(config)
        target = prepare_landing(config, spark, sqs, files, rows)
        report = IngestJob(config, spark=spark, sqs=sqs).run(until_empty=True)
        if as_json:
            print(to_json(report))
        else:
            print_ingest(report)
            from lakehouse_ops.health import table_health

            print_health([table_health(config, target).to_dict()])
        return report
    finally:
        if server is not None:
            server.terminate()
