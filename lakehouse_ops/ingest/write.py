"""Writing one ingest batch: read its objects, stage the rows (write-audit-publish, the batch id in the snapshot
summary) or merge them by key, and observe in the same pass what decides the batch's fate: the objects holding
misfit records and JSON keys naming a column in a spelling the read did not parse."""

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

from lakehouse_ops.engine.fs import head_bytes
from lakehouse_ops.errors import IngestError, first_line, without_values
from lakehouse_ops.ingest import evolve, rekey, upsert
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest.evolve import CORRUPT
from lakehouse_ops.ingest.formats import AVRO_HEADER_BYTES, avro_fields
from lakehouse_ops.ingest.jsonread import VARIANTS
from lakehouse_ops.ingest.landed import LandedBatches
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.pin import Pinned
from lakehouse_ops.ingest.read import data_schema, inference_reader
from lakehouse_ops.ingest.sourced import IDENTITY, SOURCE
from lakehouse_ops.logs import get_logger
from lakehouse_ops.paths import glob_escape

log = get_logger("ingest")


class ReadFailed(Exception):
    """The batch's read-and-write job failed: the objects are checked one by one to find the culprits."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Written:
    """What a batch's write did and saw: the staged snapshot (None: merged, or not written), whether rows were
    written at all, the identities of objects holding misfit records, and JSON key spellings not read yet."""

    staged: Optional[int] = None
    landed: Optional[int] = None  # an append that landed without staging (write.wap.enabled turned off)
    rows: int = 0  # the rows it landed
    written: bool = True
    mixed_versions: bool = False  # a merge's key tokens of several key versions (not merged; read again)
    misfits: Set[str] = field(default_factory=set)
    variants: Set[str] = field(default_factory=set)


class Redo(Exception):
    """A merge's source showed (before the merge) that the batch must be read again or lose objects."""

    def __init__(self, seen: Written) -> None:
        super().__init__("the batch is read again")
        self.seen = seen


class BatchWrites(LandedBatches):
    """The writes of an IngestJob (a mixin: it works on the job's config, session, target and quarantine): its own
    batches, and batches other workers committed or sealed without finishing."""

    def _evolve(self, pinned: Pinned, metrics: Dict[str, Any]) -> None:
        """add_new_columns: give the target the batch's new fields (and wider Parquet types) before its read."""
        located = pinned.located
        try:
            if self.cfg.format == "avro":
                heads = [head_bytes(self.spark, path, AVRO_HEADER_BYTES) for path, _ in located.values()]
                files = evolve.struct_of(self.spark, avro_fields(heads))
            elif pinned.headers:  # CSV: the headers name the columns (added as STRING)
                names = {n: None for path, _ in located.values() for n in pinned.headers.get(path, [])}
                files = evolve.struct_of(self.spark, [(n, "string") for n in names])
            else:
                paths = [glob_escape(path) for path, _ in located.values()]
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
            self._meta_columns(),
        )
        if not changes.empty:
            self.schema = data_schema(self.spark, self.target_ref, self._meta_columns())
            metrics["schema_changes"] = changes.describe()
            self.on_stage("after_evolve")

    def _settings(self) -> Any:
        """The pseudonymization settings of one batch (in-executor keys: one key version for all its tokens)."""
        from lakehouse_ops.pseudo.spark import pinned

        return pinned(self.config.section("pseudonymization").settings())

    def _rows(self, df: Any, batch: str, settings: Any) -> Any:
        """The batch's rows as the target takes them: ingest columns, enrichment, the target's column order, and
        pseudonymized columns."""
        from pyspark.sql import functions as F

        out = (
            df.withColumn(self.cfg.source_column, F.col(SOURCE))
            .withColumn(self.cfg.ingest_time_column, F.current_timestamp())
            .withColumn(self.cfg.batch_column, F.lit(batch))
        )
        if self.enrich is not None:
            out = self.enrich(out)
        # Names quoted whole: a column a file named `http.method` is one column, not a field of `http`.
        out = out.select(*[F.col(upsert.quoted(f.name)) for f in self.spark.table(self.target_ref).schema.fields])
        if self.cfg.pseudonymize is not None:
            # Fail closed: a value the service cannot convert fails the batch before the commit; its messages
            # come back after the visibility timeout.
            from lakehouse_ops.pseudo.spark import pseudonymize

            out = pseudonymize(
                out,
                self.cfg.pseudonymize.columns,
                settings,
                deterministic=self.cfg.pseudonymize.mode == "deterministic",
            )
        return out

    def _commit(self, pinned: Pinned, todo: Mapping[str, S3Object], batch: str, metrics: Dict[str, Any]) -> Written:
        """Write the batch's good rows in one pass: staged with the batch id in the snapshot summary (appends), or
        merged by key (upserts; a merge commits itself, so what the pass observes is looked at before the merge,
        and a batch to be read again raises Redo instead of merging).

        The pass observes the objects holding misfit records and JSON keys in spellings not read yet: a misfit
        costs a second read only when there is one."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        if self.cfg.schema_evolution == "add_new_columns":
            self._evolve(pinned, metrics)
        df = self._sourced(pinned.located, todo, pinned.headers)
        observation = Observation("lakehouse_ops_ingest")
        misfit = F.col(CORRUPT).isNotNull()
        variants = F.array_distinct(F.flatten(F.collect_set(F.col(VARIANTS)))) if VARIANTS in df.columns else None
        df = df.observe(
            observation,
            F.count(F.when(misfit, 1)).alias("misfits"),
            F.collect_set(F.when(misfit, F.col(IDENTITY))).alias("misfit_objects"),
            (variants if variants is not None else F.array().cast("array<string>")).alias("variants"),
        ).filter(~misfit)
        settings = self._settings() if self.cfg.pseudonymize is not None else None
        out = self._rows(df, batch, settings)
        commit_started = time.time()
        seen = Written()
        try:
            if self.cfg.upsert:
                self._merge(
                    out, batch, metrics, lambda source: self._before_merge(observation, metrics, seen, source, settings)
                )
            else:
                self._stage(out, batch, len(pinned.located), seen)
        except Redo:
            seen.written = False
        metrics["commit_s"] = round(time.time() - commit_started, 3)
        return self._seen(observation, metrics, seen)

    def _seen(self, observation: Any, metrics: Dict[str, Any], seen: Written) -> Written:
        """What the pass observed, into `seen`; before a merge, Redo when the batch must be read again."""
        observed = observation.get or {}
        metrics["misfits"] = int(observed.get("misfits", 0))
        seen.misfits = set(self._jvm_list(observed.get("misfit_objects")))
        seen.variants = set(self._jvm_list(observed.get("variants"))) - self.spellings
        if seen.written and self.cfg.upsert and (seen.variants or (seen.misfits and not self._quarantining)):
            raise Redo(seen)
        return seen

    def _before_merge(
        self, observation: Any, metrics: Dict[str, Any], seen: Written, source: Any, settings: Any
    ) -> None:
        """Once a merge's rows are read: Redo when the batch must be read again; keys pseudonymized
        deterministically brought to one key version with the target's (upsert.align_key_versions)."""
        self._seen(observation, metrics, seen)
        keys = self._protected_keys()
        if not keys:
            return
        try:
            rekeyed = rekey.align_key_versions(self.spark, self.target_ref, source, keys, settings, self.key_versions)
        except rekey.MixedVersions as exc:
            log.warning("a key rotation met the batch; it is read again", extra={"reason": str(exc)})
            if isinstance(exc, rekey.StaleKeys):
                from lakehouse_ops.pseudo import keys as key_cache

                key_cache.forget()  # the keys are read again for the batch's second read
            seen.mixed_versions = True
            raise Redo(seen) from None
        if rekeyed:
            metrics["rekeyed"] = rekeyed

    def _protected_keys(self) -> List[str]:
        """Upsert keys pseudonymized deterministically (their tokens change with the key version)."""
        pseudo = self.cfg.pseudonymize
        if self.cfg.upsert is None or pseudo is None or pseudo.mode != "deterministic":
            return []
        return [k for k in self.cfg.upsert.keys if k in pseudo.columns]

    def _jvm_list(self, value: Any) -> List[str]:
        if value is not None and not isinstance(value, (list, tuple)):
            # Arrays come back from the JVM as Scala sequences.
            value = self.spark._jvm.scala.collection.JavaConverters.seqAsJavaList(value)
        return [str(v) for v in (value or []) if v is not None]

    def _stage(self, out: Any, batch: str, objects: int, seen: Written) -> None:
        """Append the rows as a staged (write-audit-publish) snapshot carrying the batch id (`seen.staged`). When
        the target's `write.wap.enabled` was turned off meanwhile, the append lands at once (`seen.landed`): it is
        the batch's one commit, and staging is turned back on for the next."""
        spark = self.spark
        spark.conf.set("spark.wap.id", batch)
        try:
            out.writeTo(self.target_ref).option("snapshot-property." + ledger_mod.BATCH_PROPERTY, batch).option(
                "snapshot-property.lakehouse-ops.objects", str(objects)
            ).append()
        except Exception as exc:
            # The outcome may be unknown (e.g. a timeout after the metadata swap): the table's history decides.
            if self._written(batch) is None:
                raise ReadFailed(
                    IngestError(
                        "commit of batch %s to %s failed: %s" % (batch, self.target, self._said(first_line(exc)))
                    )
                ) from exc
            log.warning("commit reported an error but is in the table history", extra={"batch_id": batch})
        finally:
            spark.conf.unset("spark.wap.id")
        written = self._written(batch)
        if written is None:
            raise IngestError("batch %s is not in %s after its write" % (batch, self.target))
        if written[1]:
            log.warning(
                "the target stopped staging batches (write.wap.enabled is off): the batch landed at once; staging "
                "is turned back on",
                extra={"batch_id": batch, "table": self.target},
            )
            seen.landed, seen.rows = written[0], written[2]
            self._enable_wap()
        else:
            seen.staged = written[0]

    def _written(self, batch: str) -> Optional[Tuple[int, bool, int]]:
        """(snapshot, whether it landed on the main line at once, its rows then) of the batch's write, or None."""
        staged = ledger_mod.staged_snapshot(self.spark, self.catalog, self.target, batch)
        if staged is not None:
            return staged, False, 0
        landed = ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch)
        return (landed[0], True, int(landed[1].get("added-records", 0))) if landed is not None else None

    def _said(self, text: str) -> str:
        """Error text as a report or log may hold it: no quoted values when the target holds protected ones."""
        return without_values(text) if self.cfg.pseudonymize is not None else text

    def _merge(self, out: Any, batch: str, metrics: Dict[str, Any], check: Any) -> None:
        """Merge the rows by key (upserts commit themselves: applying a batch twice changes nothing); `check()` is
        asked once the rows are read, before the merge."""
        assert self.cfg.upsert is not None
        try:
            merged = upsert.merge(
                self.spark, self.target_ref, out, self.cfg.upsert, batch, self.cfg.source_column, check
            )
        except Redo:
            raise
        except Exception as exc:
            raise ReadFailed(
                IngestError("merge of batch %s into %s failed: %s" % (batch, self.target, first_line(exc)))
            ) from exc
        metrics.update(merged)
