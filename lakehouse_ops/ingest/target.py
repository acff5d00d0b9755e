"""The ingest target as a job finds it at start-up: it exists, carries the job's columns and the policy's
properties, stages batches (write-audit-publish), and has its quarantine table next to it."""

import functools
from typing import Optional

from lakehouse_ops.errors import ConfigError
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest import upsert
from lakehouse_ops.ingest.state import JobState
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref

log = get_logger("ingest")

QUARANTINE_SCHEMA = (
    "raw STRING, source_object STRING, reason STRING, batch_id STRING, quarantined_at TIMESTAMP, source_identity STRING"
)
# Added after the first release (the object's identity: bucket, key and ETag): a table without it gets it.
SOURCE_IDENTITY = "source_identity"
QUARANTINE_REASON = "record does not match the target table's schema (unparseable or wrong types)"


class TargetSetup(JobState):
    """Start-up of an IngestJob (a mixin: it works on the job's config, session and target)."""

    def _ensure_quarantine_table(self) -> Optional[str]:
        if not self.cfg.quarantine_table:
            return None
        ref = table_ref(self.catalog, self.config.table_name(self.cfg.quarantine_table))
        namespace = self.config.table_name(self.cfg.quarantine_table).rsplit(".", 1)[0]
        self.spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(self.catalog, namespace))
        ledger_mod.concurrent_ddl(
            self.spark,
            "CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg" % (ref, QUARANTINE_SCHEMA),
            lambda: ledger_mod.table_exists(self.spark, ref),
        )
        if SOURCE_IDENTITY not in self.spark.table(ref).columns:
            ledger_mod.concurrent_ddl(
                self.spark,
                "ALTER TABLE %s ADD COLUMN %s STRING" % (ref, SOURCE_IDENTITY),
                lambda: ledger_mod.table_exists(self.spark, ref) and SOURCE_IDENTITY in self.spark.table(ref).columns,
            )
        return ref

    def _check_pseudonymized_columns(self) -> None:
        if self.cfg.pseudonymize is None:
            return
        fields = {f.name: f.dataType.simpleString() for f in self.spark.table(self.target_ref).schema.fields}
        for column in self.cfg.pseudonymize.columns:
            if fields.get(column) != "string":
                raise ConfigError(
                    "ingest.pseudonymize column %r must be a string column of %s (it is %s)"
                    % (column, self.target, fields.get(column, "missing"))
                )
        from lakehouse_ops.pseudo.job import mark_pseudonymized

        mark_pseudonymized(self.spark, self.target_ref, self.cfg.pseudonymize.columns)  # never re-identified into

    def _check_upsert_columns(self) -> None:
        if self.cfg.upsert is not None:
            columns = [f.name for f in self.spark.table(self.target_ref).schema.fields]
            upsert.check_columns(self.cfg.upsert, columns, self.target)

    def _wap_enabled(self) -> bool:
        props = {r.key: r.value for r in self.spark.sql("SHOW TBLPROPERTIES %s" % self.target_ref).collect()}
        return bool(props.get("write.wap.enabled") == "true")

    def _enable_wap(self) -> None:
        """Batches are staged and then published (write-audit-publish): Iceberg lands one batch id only once."""
        if not self._wap_enabled():
            ledger_mod.concurrent_ddl(
                self.spark,
                "ALTER TABLE %s SET TBLPROPERTIES ('write.wap.enabled'='true')" % self.target_ref,
                lambda: ledger_mod.table_exists(self.spark, self.target_ref) and self._wap_enabled(),
            )

    def _ensure_columns(self) -> None:
        present = {f.name for f in self.spark.table(self.target_ref).schema.fields}
        wanted = [
            (self.cfg.source_column, "STRING"),
            (self.cfg.ingest_time_column, "TIMESTAMP"),
            (self.cfg.batch_column, "STRING"),
        ]
        if self.cfg.schema_evolution == "rescue":
            wanted.append((self.cfg.rescued_data_column, "STRING"))
        for name, kind in wanted:
            if name not in present:
                ledger_mod.concurrent_ddl(
                    self.spark,
                    "ALTER TABLE %s ADD COLUMN `%s` %s" % (self.target_ref, name, kind),
                    functools.partial(self._has_column, name),
                )
                log.info("added ingest column to the target", extra={"table": self.target, "column": name})

    def _has_column(self, name: str) -> bool:
        return ledger_mod.table_exists(self.spark, self.target_ref) and name in {
            f.name for f in self.spark.table(self.target_ref).schema.fields
        }

    def _apply_properties(self) -> None:
        from lakehouse_ops.health import table_health
        from lakehouse_ops.maintenance import properties
        from lakehouse_ops.maintenance.base import params_of

        policy = self.config.policy_for(self.target)
        health = table_health(self.config, self.target, policy=policy)
        plan = properties.plan(policy, health)
        if plan.run:
            properties.execute(self.spark, self.catalog, self.target, plan)
            log.info(
                "target table properties set from policy",
                extra={"table": self.target, "set": sorted(params_of(plan, properties.PropertyParams).wanted)},
            )
