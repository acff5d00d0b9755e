"""The SQS ingest job: receive a batch, read its objects, append them exactly once, then delete the messages.

Modes: `until_empty` (drain and exit: EMR steps, schedules), `max_batches`, `max_runtime_s`, and continuous
(neither: back off while the queue is empty). Every batch reports its metrics in the log and the run report.
"""
import contextlib
import datetime
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from lakehouse_ops.conditional import open_store
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.engine.session import LazySession
from lakehouse_ops.errors import ConfigError, IngestError, first_line
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest.batch import fill_batch
from lakehouse_ops.ingest.claims import Claims, new_batch_id
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.queue import Heartbeat, Queue, oldest_sent_ms
from lakehouse_ops.ingest.read import (
    CORRUPT,
    data_schema,
    existing,
    find_unreadable,
    load,
    load_function,
    spark_spellings,
)
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import quote_string, table_ref
from lakehouse_ops.units import iso_seconds as _iso

log = get_logger("ingest")

FAULT_ENV = "LAKEHOUSE_OPS_INGEST_FAULT"


def _fault_point(name):
    """Crash tests kill the process here (SIGKILL, like kill -9) when LAKEHOUSE_OPS_INGEST_FAULT names this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


# SQS's longest visibility timeout: a message deferred behind a claim comes back by then at the latest.
MAX_DEFER_SECONDS = 43200


def claims_root(config, target):
    """Where the target's claims live: `ingest.claims`, or under the catalog's warehouse."""
    root = config.ingest.claims or (config.catalog.warehouse.rstrip("/") + "/_lakehouse_ops/ingest-claims"
                                    if config.catalog.warehouse else None)
    if root is None:
        raise ConfigError("%s: ingest.claims is needed (an s3:// prefix where ingest workers claim objects) when "
                          "the catalog has no warehouse" % config.source)
    return root.rstrip("/") + "/" + target


QUARANTINE_SCHEMA = ("raw STRING, source_object STRING, reason STRING, batch_id STRING, quarantined_at TIMESTAMP")
QUARANTINE_REASON = "record does not match the target table's schema (unparseable or wrong types)"


class _ReadFailed(Exception):
    """The batch's read-and-write job failed: the objects are checked one by one to find the culprits."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _event_ms(obj, fallback_ms):
    """The S3 event time of an object in epoch ms (for lag), or the fallback when absent or unreadable."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = datetime.datetime.strptime((obj.event_time or "").replace("Z", ""), fmt)
        except ValueError:
            continue
        return int(moment.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    return fallback_ms


@contextlib.contextmanager
def _timed(metrics, stage):
    """Add the stage's wall time to metrics['timings_s'][stage]."""
    started = time.time()
    try:
        yield
    finally:
        timings = metrics.setdefault("timings_s", {})
        timings[stage] = round(timings.get(stage, 0.0) + time.time() - started, 3)


class IngestJob:
    def __init__(self, config, spark=None, sqs=None, session_factory=None):
        self.config = config
        self.cfg = config.section("ingest")
        self.catalog = config.catalog.name
        self._session = LazySession(config, spark, session_factory)
        if sqs is None:
            from lakehouse_ops.aws.clients import client
            sqs = client("sqs")
        self.queue = Queue(sqs, self.cfg.queue_url, self.cfg.dlq_url, self.cfg.visibility_timeout_seconds)
        self.enrich = load_function(self.cfg.enrichment) if self.cfg.enrichment else None
        self.target = config.table_name(self.cfg.target_table)
        self.target_ref = table_ref(self.catalog, self.target)
        self.claims = Claims(open_store(claims_root(config, self.target)), self.cfg.claim_seconds)
        self._prepared = False

    @property
    def spark(self):
        return self._session.get()

    # -- start-up -------------------------------------------------------------------------------------------

    def prepare(self):
        """Ledger and quarantine tables exist, the target has the job's columns and the policy's properties,
        and batches interrupted after their commit are finished."""
        if self._prepared:
            return
        spark = self.spark
        try:
            spark.table(self.target_ref).schema
        except Exception:
            raise IngestError("target table %s does not exist: create it first (its schema governs what is "
                              "read)" % self.target) from None
        self._ensure_columns()
        self._enable_wap()
        self._check_pseudonymized_columns()
        self._apply_properties()
        self.ledger = ledger_mod.Ledger(spark, self.catalog, self.config.table_name(self.cfg.ledger))
        self.ledger.ensure()
        if self.cfg.quarantine_table:
            self.quarantine_ref = table_ref(self.catalog, self.config.table_name(self.cfg.quarantine_table))
            namespace = self.config.table_name(self.cfg.quarantine_table).rsplit(".", 1)[0]
            spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(self.catalog, namespace))
            ledger_mod.concurrent_ddl(
                spark, "CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg" % (self.quarantine_ref, QUARANTINE_SCHEMA),
                lambda: ledger_mod.table_exists(spark, self.quarantine_ref))
        else:
            self.quarantine_ref = None
        self.schema = data_schema(spark, self.target_ref, self._meta_columns())
        self.reconciled = self._reconcile()
        self._prepared = True

    def _reconcile(self):
        """Finish batches whose target commit happened but whose ledger record did not (an interruption):
        redo their quarantine rows, then mark them committed. Returns how many were finished."""
        finished = 0
        for batch, snapshot, objects in self.ledger.interrupted(self.catalog, self.target):
            self._record_landed(batch, objects, snapshot)
            finished += 1
            log.info("finished a batch committed before an interruption",
                     extra={"batch_id": batch, "snapshot_id": snapshot})
        return finished

    def _record_landed(self, batch, objects, snapshot):
        """Complete a batch whose commit landed without its worker finishing: redo its quarantine rows (replacing
        any written), then record it committed."""
        todo = {o.identity: o for o in objects}
        located, _ = existing(self.spark, todo, self.cfg.uri_map)
        if located:
            self._quarantine(batch, located, todo, {}, replace=True)
        self.ledger.record(batch, objects, ledger_mod.COMMITTED, snapshot)

    def _check_pseudonymized_columns(self):
        if self.cfg.pseudonymize is None:
            return
        fields = {f.name: f.dataType.simpleString() for f in self.spark.table(self.target_ref).schema.fields}
        for column in self.cfg.pseudonymize.columns:
            if fields.get(column) != "string":
                raise ConfigError("ingest.pseudonymize column %r must be a string column of %s (it is %s)" % (
                    column, self.target, fields.get(column, "missing")))

    def _wap_enabled(self):
        props = {r.key: r.value for r in self.spark.sql("SHOW TBLPROPERTIES %s" % self.target_ref).collect()}
        return props.get("write.wap.enabled") == "true"

    def _enable_wap(self):
        """Batches are staged and then published (write-audit-publish): Iceberg lands one batch id only once."""
        if not self._wap_enabled():
            ledger_mod.concurrent_ddl(
                self.spark, "ALTER TABLE %s SET TBLPROPERTIES ('write.wap.enabled'='true')" % self.target_ref,
                lambda: ledger_mod.table_exists(self.spark, self.target_ref) and self._wap_enabled())

    def _meta_columns(self):
        return {self.cfg.source_column, self.cfg.ingest_time_column, self.cfg.batch_column}

    def _ensure_columns(self):
        present = {f.name for f in self.spark.table(self.target_ref).schema.fields}
        wanted = [(self.cfg.source_column, "STRING"), (self.cfg.ingest_time_column, "TIMESTAMP"),
                  (self.cfg.batch_column, "STRING")]
        for name, kind in wanted:
            if name not in present:
                ledger_mod.concurrent_ddl(
                    self.spark, "ALTER TABLE %s ADD COLUMN `%s` %s" % (self.target_ref, name, kind),
                    lambda name=name: ledger_mod.table_exists(self.spark, self.target_ref) and name in {
                        f.name for f in self.spark.table(self.target_ref).schema.fields})
                log.info("added ingest column to the target", extra={"table": self.target, "column": name})

    def _apply_properties(self):
        from lakehouse_ops.health import table_health
        from lakehouse_ops.maintenance import properties
        policy = self.config.policy_for(self.target)
        health = table_health(self.config, self.target, policy=policy)
        plan = properties.plan(policy, health)
        if plan.run:
            properties.execute(self.spark, self.catalog, self.target, plan)
            log.info("target table properties set from policy", extra={"table": self.target,
                                                                        "set": sorted(plan.params.wanted)})

    # -- the loop -------------------------------------------------------------------------------------------

    def _receive(self):
        """Fill one batch; its heartbeat runs from the first receipt, so a prefetched batch stays hidden too."""
        heartbeat = Heartbeat(self.queue, self.cfg.heartbeat_seconds).start()
        try:
            batch = fill_batch(self.queue, self.cfg.batch, self.cfg.eventbridge_key_encoding,
                               on_receive=heartbeat.add)
        except Exception:
            heartbeat.stop()
            raise
        return batch, heartbeat

    def run(self, until_empty=False, max_batches=None, max_runtime_s=None):
        """Process batches until a stop condition; the next batch is received while the current one is written."""
        started = time.time()
        report = {"ok": True, "target": self.target, "queue": self.cfg.queue_url, "batches": [],
                  "started_at": _iso(started), "receive_wait_s": 0.0}
        self.prepare()
        report["reconciled_batches"] = self.reconciled
        backoff = self.cfg.empty_backoff_seconds
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqs-prefetch")
        upcoming = None
        try:
            while True:
                if max_batches is not None and len(report["batches"]) >= max_batches:
                    report["stopped"] = "max_batches"
                    break
                if max_runtime_s is not None and time.time() - started >= max_runtime_s:
                    report["stopped"] = "max_runtime"
                    break
                waited = time.time()
                batch, heartbeat = upcoming.result() if upcoming is not None else self._receive()
                report["receive_wait_s"] = round(report["receive_wait_s"] + time.time() - waited, 3)
                upcoming = None
                if batch.empty:
                    heartbeat.stop()
                    if until_empty:
                        report["stopped"] = "queue empty"
                        break
                    time.sleep(backoff)
                    backoff = min(backoff * 2, self.cfg.max_empty_backoff_seconds)
                    continue
                backoff = self.cfg.empty_backoff_seconds
                if max_batches is None or len(report["batches"]) + 1 < max_batches:
                    upcoming = pool.submit(self._receive)
                try:
                    metrics = self.process(batch, heartbeat)
                finally:
                    heartbeat.stop()
                report["batches"].append(metrics)
                log.info("batch committed", extra=metrics)
        finally:
            if upcoming is not None:
                # Received but not processed: hand the messages back instead of waiting out their timeout.
                try:
                    leftover, heartbeat = upcoming.result()
                    heartbeat.stop()
                    self.queue.release(leftover.messages)
                except Exception as exc:  # they come back after the visibility timeout all the same
                    log.warning("could not release prefetched messages", extra={"error": str(exc)[:200]})
            pool.shutdown()
        report.update(_totals(report["batches"], time.time() - started))
        report["finished_at"] = _iso(time.time())
        return report

    def process(self, batch, heartbeat=None):
        started = time.time()
        metrics = {"messages": len(batch.messages), "objects": len(batch.objects), "duplicates": batch.duplicates,
                   "bytes": batch.bytes, "receive_calls": batch.receive_calls,
                   "receive_s": round(batch.fill_seconds, 3), "ignored": len(batch.ignored),
                   "deletions_seen": len(batch.deleted), "poison": len(batch.poison), "rows": 0, "quarantined": 0,
                   "dlq_messages": 0, "already_committed": 0, "batch_id": None, "snapshot_id": None,
                   "commit_s": 0.0}
        sent = oldest_sent_ms(batch.messages)
        oldest = min([_event_ms(o, sent) for o in batch.objects.values()] or [sent])
        _fault_point("after_receive")
        for message, reason in batch.poison:
            log.warning("poison message", extra={"message_id": message.message_id, "reason": reason})
            if self.cfg.poison_action == "dlq":
                self.queue.dead_letter(message, "poison: " + reason)
                metrics["dlq_messages"] += 1
        for obj in batch.deleted:
            log.info("object deletion seen; nothing to ingest", extra={"object": obj.uri})
        if batch.ignored:
            self.queue.delete([m for m, _ in batch.ignored])

        identities = list(batch.objects)
        batch_id = new_batch_id()
        with _timed(metrics, "claims"):
            claimed = self.claims.claim(identities, batch_id)
        for other, seal in claimed.to_finish.items():
            with _timed(metrics, "finish_batches"):
                self._finish(other, seal)
            metrics["finished_batches"] = metrics.get("finished_batches", 0) + 1
        with _timed(metrics, "ledger_check"):
            done = self.ledger.committed(identities)
        metrics["already_committed"] = len(done)
        metrics["held_elsewhere"] = len(claimed.held)
        mine = {i: e for i, e in claimed.taken.items() if i not in done}
        todo = {i: batch.objects[i] for i in mine}
        failed = {}
        if todo:
            failed = self._write(todo, mine, batch_id, metrics)
        with _timed(metrics, "settle_messages"):
            self._settle_messages(batch, failed, metrics, held=claimed.held, heartbeat=heartbeat)
        # Committed (here or by others) or dead-lettered: the claims have done their work.
        self.claims.release(claimed.taken)
        metrics["lag_s"] = round(time.time() - oldest / 1000.0, 3)
        metrics["batch_s"] = round(time.time() - started, 3)
        return metrics

    def _write(self, todo, mine, batch, metrics):
        """Read, transform, stage, seal and publish `todo`; return {identity: reason} for objects that could not
        be used."""
        spark = self.spark
        with _timed(metrics, "exists"):
            located, failed = existing(spark, todo, self.cfg.uri_map)
        while located:
            usable = [todo[i] for i in located]
            metrics["batch_id"] = batch
            with _timed(metrics, "ledger_write"):
                self.ledger.record(batch, usable, ledger_mod.PENDING)
            _fault_point("after_pending")
            try:
                with _timed(metrics, "read_write"):
                    staged, misfit_sources = self._commit(located, todo, batch, metrics)
            except _ReadFailed as exc:
                with _timed(metrics, "isolate"):
                    unreadable = find_unreadable(spark, self.cfg, self.schema, located, self._quarantining)
                if not unreadable:
                    raise exc.error
                log.warning("objects could not be read; the rest of the batch goes on",
                            extra={"unreadable": len(unreadable)})
                failed.update(unreadable)
                # The rest goes on as a new batch; claims follow it (the old one is never sealed).
                batch = new_batch_id()
                mine.update(self.claims.rebind({i: mine[i] for i in located if i not in unreadable}, batch))
                located = {i: v for i, v in located.items() if i not in unreadable and i in mine}
                continue
            if not self.claims.seal(batch, [_describe(o) for o in usable], staged):
                raise IngestError("batch %s of %s was made void by another worker while it was written: its claims "
                                  "expired (raise ingest.claim_seconds above the time a batch takes); its messages "
                                  "come back and are retried" % (batch, self.target))
            _fault_point("after_seal")
            with _timed(metrics, "publish"):
                snapshot, summary = self._publish(batch, staged)
            metrics["rows"] = int(summary.get("added-records", 0))
            _fault_point("after_commit")
            with _timed(metrics, "quarantine"):
                self._quarantine(batch, located, todo, metrics, only_sources=misfit_sources)
            with _timed(metrics, "ledger_write"):
                self.ledger.record(batch, usable, ledger_mod.COMMITTED, snapshot)
            _fault_point("before_delete")
            metrics["snapshot_id"] = snapshot
            break
        return failed

    def _publish(self, batch, staged):
        """Publish a staged batch; (snapshot id, summary) of the commit that landed it, whoever published it."""
        try:
            call(self.spark, self.catalog, "cherrypick_snapshot", {"table": self.target, "snapshot_id": staged})
        except Exception as exc:
            if "DuplicateWAPCommitException" not in str(exc) and \
                    ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch) is None:
                raise IngestError("publishing batch %s (staged snapshot %d) to %s failed: %s"
                                  % (batch, staged, self.target, first_line(exc))) from exc
            log.info("batch already published by another worker", extra={"batch_id": batch})
        found = ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch)
        if found is None:
            raise IngestError("batch %s is not in the history of %s after its publish" % (batch, self.target))
        return found

    def _finish(self, batch, seal):
        """Land a batch another worker sealed and then left (its claims expired), then record it committed."""
        objects = [S3Object(**{k: v for k, v in doc.items() if k != "identity"}) for doc in seal["objects"]]
        found = ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch)
        if found is None:
            staged = seal.get("staged_snapshot")
            if ledger_mod.staged_snapshot(self.spark, self.catalog, self.target, batch) != staged:
                raise IngestError("batch %s was sealed but its staged snapshot %s is gone from %s (expired?): its "
                                  "objects stay claimed; publish or re-ingest them by hand" % (batch, staged,
                                                                                             self.target))
            found = self._publish(batch, staged)
        self._record_landed(batch, objects, found[0])
        self.claims.release_batch(batch, [o.identity for o in objects])
        log.info("finished a batch another worker sealed and left", extra={"batch_id": batch,
                                                                           "snapshot_id": found[0]})

    @property
    def _quarantining(self):
        return self.quarantine_ref is not None

    def _sourced(self, located, todo):
        """The batch's rows, each with the S3 URI of the object it came from."""
        from pyspark.sql import functions as F
        pairs = [(spelling, todo[identity].uri) for identity, (_, uri) in located.items()
                 for spelling in spark_spellings(uri)]
        sources = self.spark.createDataFrame(pairs, "_lakehouse_ops_file STRING, _lakehouse_ops_source STRING")
        df = load(self.spark, self.cfg, self.schema, [path for path, _ in located.values()], self._quarantining)
        return df.join(F.broadcast(sources), "_lakehouse_ops_file")

    def _commit(self, located, todo, batch, metrics):
        """Append the batch's good rows in one pass, with the batch id in the snapshot summary.

        Returns the staged snapshot id (published after the batch is sealed) and the S3 URIs of the objects that
        held misfit records.

        The pass also counts the records that do not fit (an observation), so they cost a second read only when
        there are some.
        """
        from pyspark.sql import Observation
        from pyspark.sql import functions as F
        spark = self.spark
        df = self._sourced(located, todo)
        observation = Observation("lakehouse_ops_ingest")
        if self._quarantining and self.cfg.format in ("json", "csv"):
            misfit = F.col(CORRUPT).isNotNull()
            df = df.observe(observation, F.count(F.when(misfit, 1)).alias("misfits"),
                            F.collect_set(F.when(misfit, F.col("_lakehouse_ops_source"))).alias("misfit_sources"))
            df = df.filter(F.col(CORRUPT).isNull())
        else:
            df = df.observe(observation, F.lit(0).alias("misfits"),
                            F.array().cast("array<string>").alias("misfit_sources"))
        out = df.withColumn(self.cfg.source_column, F.col("_lakehouse_ops_source")) \
            .withColumn(self.cfg.ingest_time_column, F.current_timestamp()) \
            .withColumn(self.cfg.batch_column, F.lit(batch))
        if self.enrich is not None:
            out = self.enrich(out)
        out = out.select(*[f.name for f in spark.table(self.target_ref).schema.fields])
        if self.cfg.pseudonymize is not None:
            # Fail closed: a value the service cannot convert fails the batch before the commit; its messages
            # come back after the visibility timeout.
            from lakehouse_ops.pseudo.spark import pseudonymize
            out = pseudonymize(out, self.cfg.pseudonymize.columns, self.config.pseudonymization.settings(),
                               deterministic=self.cfg.pseudonymize.mode == "deterministic")
        commit_started = time.time()
        spark.conf.set("spark.wap.id", batch)
        try:
            out.writeTo(self.target_ref).option("snapshot-property." + ledger_mod.BATCH_PROPERTY, batch) \
                .option("snapshot-property.lakehouse-ops.objects", str(len(located))).append()
        except Exception as exc:
            # The outcome may be unknown (e.g. a timeout after the metadata swap): the table's history decides.
            if ledger_mod.staged_snapshot(spark, self.catalog, self.target, batch) is None:
                raise _ReadFailed(IngestError("commit of batch %s to %s failed: %s" % (
                    batch, self.target, first_line(exc)))) from exc
            log.warning("commit reported an error but is in the table history", extra={"batch_id": batch})
        finally:
            spark.conf.unset("spark.wap.id")
        metrics["commit_s"] = round(time.time() - commit_started, 3)
        staged = ledger_mod.staged_snapshot(spark, self.catalog, self.target, batch)
        if staged is None:
            raise IngestError("batch %s is not staged in %s after its write" % (batch, self.target))
        observed = observation.get or {}
        metrics["misfits"] = int(observed.get("misfits", 0))
        sources = observed.get("misfit_sources")
        if sources is not None and not isinstance(sources, (list, tuple)):
            # Arrays come back from the JVM as Scala sequences.
            sources = spark._jvm.scala.collection.JavaConverters.seqAsJavaList(sources)
        return staged, set(sources or [])

    def _quarantine(self, batch, located, todo, metrics, replace=False, only_sources=None):
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
                raw.alias("raw"), F.col("_lakehouse_ops_source").alias("source_object"),
                F.lit(QUARANTINE_REASON).alias("reason"), F.lit(batch).alias("batch_id"),
                F.current_timestamp().alias("quarantined_at")).writeTo(self.quarantine_ref).append()
        finally:
            parsed.unpersist()
        metrics["quarantined"] = self.spark.table(self.quarantine_ref).filter(
            F.col("batch_id") == batch).count()

    def _settle_messages(self, batch, failed, metrics, held=None, heartbeat=None):
        """Delete messages whose objects are all committed; dead-letter those with failed objects; hide those
        with an object another worker is writing until its claim expires (by then it is committed, and they are
        deleted; waiting once, not polling, keeps their receive count low for the queue's redrive policy)."""
        held = held or {}
        to_delete, deferred = [], {}
        for message in batch.messages:
            ids = batch.message_objects.get(message.message_id)
            if ids is None:
                continue  # poison or ignored: already handled
            reasons = [failed[i] for i in ids if i in failed]
            if any(i in held for i in ids) and not reasons:
                until = max(held[i] for i in ids if i in held)
                seconds = int(min(MAX_DEFER_SECONDS, max(1, until - time.time() + 1)))
                deferred.setdefault(seconds, []).append(message)
            elif not reasons:
                to_delete.append(message)
            elif self.cfg.poison_action == "dlq":
                self.queue.dead_letter(message, "; ".join(reasons))
                metrics["dlq_messages"] += 1
            else:
                log.warning("message left for the queue's redrive policy",
                            extra={"message_id": message.message_id, "reason": "; ".join(reasons)})
        self.queue.delete(to_delete)
        for seconds, messages in deferred.items():
            if heartbeat is not None:
                heartbeat.discard(messages)
            self.queue.extend(messages, seconds)
        metrics["deleted_messages"] = len(to_delete) + len(batch.ignored)
        metrics["deferred_messages"] = sum(len(m) for m in deferred.values())


def _describe(obj):
    """An object as a seal lists it (enough to read it again)."""
    return {"bucket": obj.bucket, "key": obj.key, "size": obj.size, "etag": obj.etag, "version_id": obj.version_id,
            "identity": obj.identity}


def _totals(batches, seconds):
    keys = ("messages", "objects", "duplicates", "bytes", "rows", "quarantined", "dlq_messages", "poison",
            "already_committed")
    totals = {k: sum(b.get(k, 0) for b in batches) for k in keys}
    totals["batches"] = len(batches)
    totals["duration_s"] = round(seconds, 3)
    totals["batches_per_minute"] = round(len(batches) / (seconds / 60.0), 3) if seconds > 0 else 0.0
    totals["rows_per_s"] = round(totals["rows"] / seconds, 1) if seconds > 0 else 0.0
    totals["messages_per_s"] = round(totals["messages"] / seconds, 1) if seconds > 0 else 0.0
    totals["max_lag_s"] = max((b.get("lag_s", 0) for b in batches), default=0)
    return {"totals": totals}

