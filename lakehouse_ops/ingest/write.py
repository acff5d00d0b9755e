"""Writing one ingest batch: read its objects, stage the rows (write-audit-publish, the batch id in the snapshot
summary), publish, and quarantine the records that do not fit."""

import time
from typing import Any, Collection, Dict, List, Mapping, Optional, Set, Tuple

from lakehouse_ops.engine.fs import head_bytes
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.errors import IngestError, first_line
from lakehouse_ops.ingest import evolve, upsert
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest.evolve import CORRUPT
from lakehouse_ops.ingest.formats import AVRO_HEADER_BYTES, avro_fields
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.read import Located, data_schema, inference_reader, load, spark_spellings
from lakehouse_ops.ingest.state import JobState
from lakehouse_ops.ingest.target import QUARANTINE_REASON
from lakehouse_ops.logs import get_logger
from lakehouse_ops.paths import glob_escape
from lakehouse_ops.sqltext import quote_string

log = get_logger("ingest")


class ReadFailed(Exception):
    """The batch's read-and-write job failed: the objects are checked one by one to find the culprits."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class BatchWrites(JobState):
    """The writes of an IngestJob (a mixin: it works on the job's config, session, target and quarantine): its own
    batches, and batches other workers committed or sealed without finishing."""

    def _publish(self, batch: str, staged: int) -> Tuple[int, Dict[str, str]]:
        """Publish a staged batch; (snapshot id, summary) of the commit that landed it, whoever published it."""
        try:
            call(self.spark, self.catalog, "cherrypick_snapshot", {"table": self.target, "snapshot_id": staged})
        except Exception as exc:
            if (
                "DuplicateWAPCommitException" not in str(exc)
                and ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch) is None
            ):
                raise IngestError(
                    "publishing batch %s (staged snapshot %d) to %s failed: %s"
                    % (batch, staged, self.target, first_line(exc))
                ) from exc
            log.info("batch already published by another worker", extra={"batch_id": batch})
        found = ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch)
        if found is None:
            raise IngestError("batch %s is not in the history of %s after its publish" % (batch, self.target))
        return found

    def _evolve(self, located: Located, metrics: Dict[str, Any]) -> None:
        """add_new_columns: give the target the batch's new fields (and wider Parquet types) before its read."""
        paths = [glob_escape(path) for path, _ in located.values()]
        try:
            if self.cfg.format == "avro":
                heads = [head_bytes(self.spark, path, AVRO_HEADER_BYTES) for path, _ in located.values()]
                files = evolve.struct_of(self.spark, avro_fields(heads))
            else:
                files = evolve.file_schema(self.spark, inference_reader(self.spark, self.cfg), paths)
        except Exception as exc:
            raise ReadFailed(IngestError("inferring the schema of batch files failed: %s" % first_line(exc))) from exc
        changes = evolve.apply(
            self.spark,
            self.target_ref,
            lambda: data_schema(self.spark, self.target_ref, self._meta_columns()),
            files,
            self.cfg.format in ("parquet", "avro"),  # declared types, not inferred ones
            ledger_mod.concurrent_ddl,
        )
        if not changes.empty:
            self.schema = data_schema(self.spark, self.target_ref, self._meta_columns())
            metrics["schema_changes"] = changes.describe()
            self.on_stage("after_evolve")

    @property
    def _quarantining(self) -> bool:
        return self.quarantine_ref is not None

    def _sourced(self, located: Located, todo: Mapping[str, S3Object]) -> Any:
        """The batch's rows, each with the S3 URI of the object it came from."""
        from pyspark.sql import functions as F

        pairs = [
            (spelling, todo[identity].uri)
            for identity, (_, uri) in located.items()
            for spelling in spark_spellings(uri)
        ]
        sources = self.spark.createDataFrame(pairs, "_lakehouse_ops_file STRING, _lakehouse_ops_source STRING")
        df = load(self.spark, self.cfg, self.schema, [path for path, _ in located.values()], self._quarantining)
        return df.join(F.broadcast(sources), "_lakehouse_ops_file")

    def _rows(self, df: Any, batch: str) -> Any:
        """The batch's rows as the target takes them: ingest columns, enrichment, the target's column order, and
        pseudonymized columns."""
        from pyspark.sql import functions as F

        out = (
            df.withColumn(self.cfg.source_column, F.col("_lakehouse_ops_source"))
            .withColumn(self.cfg.ingest_time_column, F.current_timestamp())
            .withColumn(self.cfg.batch_column, F.lit(batch))
        )
        if self.enrich is not None:
            out = self.enrich(out)
        out = out.select(*[f.name for f in self.spark.table(self.target_ref).schema.fields])
        if self.cfg.pseudonymize is not None:
            # Fail closed: a value the service cannot convert fails the batch before the commit; its messages
            # come back after the visibility timeout.
            from lakehouse_ops.pseudo.spark import pseudonymize

            out = pseudonymize(
                out,
                self.cfg.pseudonymize.columns,
                self.config.section("pseudonymization").settings(),
                deterministic=self.cfg.pseudonymize.mode == "deterministic",
            )
        return out

    def _commit(
        self, located: Located, todo: Mapping[str, S3Object], batch: str, metrics: Dict[str, Any]
    ) -> Tuple[Optional[int], Set[str]]:
        """Write the batch's good rows in one pass: staged with the batch id in the snapshot summary (appends), or
        merged by key (upserts).

        Returns the staged snapshot id (published after the batch is sealed; None for a merge, which commits
        itself) and the S3 URIs of the objects that held misfit records.

        The pass also counts the records that do not fit (an observation), so they cost a second read only when
        there are some.
        """
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        if self.cfg.schema_evolution == "add_new_columns":
            self._evolve(located, metrics)
        df = self._sourced(located, todo)
        observation = Observation("lakehouse_ops_ingest")
        if self._quarantining and self.cfg.format in ("json", "csv"):
            misfit = F.col(CORRUPT).isNotNull()
            df = df.observe(
                observation,
                F.count(F.when(misfit, 1)).alias("misfits"),
                F.collect_set(F.when(misfit, F.col("_lakehouse_ops_source"))).alias("misfit_sources"),
            )
            df = df.filter(F.col(CORRUPT).isNull())
        else:
            df = df.observe(
                observation, F.lit(0).alias("misfits"), F.array().cast("array<string>").alias("misfit_sources")
            )
        out = self._rows(df, batch)
        commit_started = time.time()
        staged: Optional[int] = None
        if self.cfg.upsert:
            self._merge(out, batch, metrics)
        else:
            staged = self._stage(out, batch, len(located))
        metrics["commit_s"] = round(time.time() - commit_started, 3)
        observed = observation.get or {}
        metrics["misfits"] = int(observed.get("misfits", 0))
        sources = observed.get("misfit_sources")
        if sources is not None and not isinstance(sources, (list, tuple)):
            # Arrays come back from the JVM as Scala sequences.
            sources = self.spark._jvm.scala.collection.JavaConverters.seqAsJavaList(sources)
        return staged, set(sources or [])

    def _stage(self, out: Any, batch: str, objects: int) -> int:
        """Append the rows as a staged (write-audit-publish) snapshot carrying the batch id; its id."""
        spark = self.spark
        spark.conf.set("spark.wap.id", batch)
        try:
            out.writeTo(self.target_ref).option("snapshot-property." + ledger_mod.BATCH_PROPERTY, batch).option(
                "snapshot-property.lakehouse-ops.objects", str(objects)
            ).append()
        except Exception as exc:
            # The outcome may be unknown (e.g. a timeout after the metadata swap): the table's history decides.
            if ledger_mod.staged_snapshot(spark, self.catalog, self.target, batch) is None:
                raise ReadFailed(
                    IngestError("commit of batch %s to %s failed: %s" % (batch, self.target, first_line(exc)))
                ) from exc
            log.warning("commit reported an error but is in the table history", extra={"batch_id": batch})
        finally:
            spark.conf.unset("spark.wap.id")
        staged = ledger_mod.staged_snapshot(spark, self.catalog, self.target, batch)
        if staged is None:
            raise IngestError("batch %s is not staged in %s after its write" % (batch, self.target))
        return staged

    def _merge(self, out: Any, batch: str, metrics: Dict[str, Any]) -> None:
        """Merge the rows by key (upserts commit themselves: applying a batch twice changes nothing)."""
        assert self.cfg.upsert is not None
        try:
            merged = upsert.merge(self.spark, self.target_ref, out, self.cfg.upsert, batch, self.cfg.source_column)
        except Exception as exc:
            raise ReadFailed(
                IngestError("merge of batch %s into %s failed: %s" % (batch, self.target, first_line(exc)))
            ) from exc
        metrics.update(merged)

    def _quarantine(
        self,
        batch: str,
        located: Located,
        todo: Mapping[str, S3Object],
        metrics: Dict[str, Any],
        replace: bool = False,
        only_sources: Optional[Collection[str]] = None,
    ) -> None:
        """Write the batch's misfit records to the quarantine table (after the target commit, before the ledger
        says committed: an interruption in between is redone by `reconcile`, replacing what was written)."""
        from pyspark.sql import functions as F

        if not self._quarantining or self.cfg.format not in ("json", "csv"):
            return
        if replace:
            listed = ", ".join(quote_string(todo[i].uri) for i in sorted(located))
            self.spark.sql("DELETE FROM %s WHERE source_object IN (%s)" % (self.quarantine_ref, listed))
        elif not metrics.get("misfits"):
            return
        if only_sources is not None:
            # Only the objects the commit's observation saw misfits in are read again.
            located = {i: v for i, v in located.items() if todo[i].uri in only_sources}
        # Spark refuses a scan that needs only the corrupt-record column unless the parsed rows are cached.
        parsed = self._sourced(located, todo).cache()
        try:
            # With pseudonymized columns the raw text would put plaintext in the lake: it is withheld (the
            # record stays in its source object).
            raw = F.lit(None).cast("string") if self.cfg.pseudonymize is not None else F.col(CORRUPT)
            parsed.filter(F.col(CORRUPT).isNotNull()).select(
                raw.alias("raw"),
                F.col("_lakehouse_ops_source").alias("source_object"),
                F.lit(QUARANTINE_REASON).alias("reason"),
                F.lit(batch).alias("batch_id"),
                F.current_timestamp().alias("quarantined_at"),
            ).writeTo(self.quarantine_ref).append()
        finally:
            parsed.unpersist()
        metrics["quarantined"] = self.spark.table(self.quarantine_ref).filter(F.col("batch_id") == batch).count()

    def _record_landed(self, batch: str, objects: List[S3Object], snapshot: int) -> None:
        """Complete a batch whose commit landed without its worker finishing: redo its quarantine rows (replacing
        any written), then record it committed."""
        todo = {o.identity: o for o in objects}
        pinned = self.pinner.pin(todo)
        try:
            if pinned.located:
                self._quarantine(batch, pinned.located, todo, {}, replace=True)
        finally:
            self.pinner.discard(pinned)
        self.ledger.record(batch, objects, ledger_mod.COMMITTED, snapshot)

    def _finish(self, batch: str, seal: Mapping[str, Any]) -> None:
        """Land a batch another worker sealed and then left (its claims expired), then record it committed."""
        objects = [S3Object(**{k: v for k, v in doc.items() if k != "identity"}) for doc in seal["objects"]]
        found = ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch)
        if found is None:
            staged = seal.get("staged_snapshot")
            if staged is None or ledger_mod.staged_snapshot(self.spark, self.catalog, self.target, batch) != staged:
                raise IngestError(
                    "batch %s was sealed but its staged snapshot %s is gone from %s (expired?): its "
                    "objects stay claimed; publish or re-ingest them by hand" % (batch, staged, self.target)
                )
            found = self._publish(batch, staged)
        self._record_landed(batch, objects, found[0])
        self.claims.release_batch(batch, [o.identity for o in objects])
        log.info("finished a batch another worker sealed and left", extra={"batch_id": batch, "snapshot_id": found[0]})
