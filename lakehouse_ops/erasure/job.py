"""Erase subjects from every table configured as holding subject data, and prove it.

Per table:
 1. locate: from the metadata, the files of any remaining snapshot whose column bounds admit one of the subject's
    values; Spark reads exactly those files raw (Parquet columns matched by Iceberg field id, so renamed columns
    are still found) and reports the files that hold the subject. Nothing else is read.
 2. delete: `DELETE FROM ... WHERE column IN (...)` under the table's own delete mode (the shared table property
    is never changed: other writers read it); then every file of the current snapshot that still holds the bytes
    of deleted rows (behind delete files: merge-on-read, now or earlier) is rewritten with the deletes applied.
 3. expire: exactly the snapshots whose files hold the subject (time travel can no longer return it); Iceberg
    deletes the files, manifests and manifest lists no remaining snapshot needs.
 4. orphans: the table's orphan-file policy, with all its guards (age >= 24 h, location, budget).
 5. verify: no file of any remaining snapshot holds the subject, no unreferenced file left in the table location
    holds it (Parquet files are read; unreferenced Avro/ORC files cannot be checked and fail the verification
    until orphan removal takes them), and no file path names it.
The receipt (JSON) lists tables, rows deleted, snapshots expired, files removed, the verification, timestamps.
Subjects appear in it (and in logs) only by reference, never by value.
"""
import time
from urllib.parse import unquote, unquote_plus

from lakehouse_ops.engine.session import LazySession
from lakehouse_ops.erasure import files as meta_files
from lakehouse_ops.erasure.subjects import all_version_tokens, found_in, reidentified, resolve_subjects, table_values
from lakehouse_ops.errors import ConfigError, LakehouseOpsError, first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance.base import Plan
from lakehouse_ops.maintenance.verify import snapshots_since
from lakehouse_ops.paths import glob_escape, normalize
from lakehouse_ops.sqltext import literal, table_ref
from lakehouse_ops.units import iso_seconds

log = get_logger("erasure")
RECEIPT_VERSION = 1
FIELD_ID_READ = "spark.sql.parquet.fieldId.read.enabled"


class ErasureError(LakehouseOpsError):
    """The erasure could not be carried out as asked (the receipt says how far it got)."""


def _names_value(uri, values):
    """Whether a path segment `name=value` (a partition directory) spells one of `values`."""
    for segment in uri.split("/"):  # split first: an encoded value may hold "/" (%2F)
        if "=" not in segment:
            continue
        value = segment.split("=", 1)[1]
        # Iceberg form-encodes partition values in paths (space as "+"); a URI may percent-encode them once more.
        if unquote_plus(value) in values or unquote_plus(unquote(value)) in values:
            return True
    return False


def _spark_key(path):
    """Spark reports file paths URL-encoded (file:/a%20b); Iceberg keeps them as written."""
    return normalize(unquote(path))


class _Raw:
    """Read data files raw, by Iceberg field id, in one Spark job per call."""

    def __init__(self, spark, field_ids):
        from pyspark.sql.types import StringType, StructField, StructType
        self.spark = spark
        self.columns = ["f%d" % fid for fid in field_ids]
        self.schema = StructType([StructField("f%d" % fid, StringType(), True, metadata={"parquet.field.id": fid})
                                  for fid in field_ids])

    def frame(self, paths):
        from pyspark.sql import functions as F
        df = self.spark.read.schema(self.schema).parquet(*[glob_escape(p) for p in paths])
        return df.select(F.col("_metadata.file_path").alias("_path"),
                         F.explode(F.array(*self.columns)).alias("v")).where("v IS NOT NULL")

    def holding(self, paths, values):
        """{normalized path: set of values} for the files among `paths` holding any of `values`."""
        if not paths or not values:
            return {}
        out = {}
        with _field_id_reads(self.spark):
            rows = self.frame(paths).where(self._in(values)).distinct().collect()
        for row in rows:
            out.setdefault(_spark_key(row["_path"]), set()).add(row["v"])
        return out

    def distinct_values(self, paths):
        if not paths:
            return []
        with _field_id_reads(self.spark):
            return [r["v"] for r in self.frame(paths).select("v").distinct().collect()]

    @staticmethod
    def _in(values):
        from pyspark.sql import functions as F
        return F.col("v").isin(sorted(values))


class _field_id_reads:
    def __init__(self, spark):
        self.spark = spark

    def __enter__(self):
        self.before = self.spark.conf.get(FIELD_ID_READ, None)
        self.spark.conf.set(FIELD_ID_READ, "true")

    def __exit__(self, *exc):
        if self.before is None:
            self.spark.conf.unset(FIELD_ID_READ)
        else:
            self.spark.conf.set(FIELD_ID_READ, self.before)


def _client(config):
    if config.pseudonymization is None:
        return None, None
    from lakehouse_ops.pseudo.spark import InExecutorSettings, make_client
    settings = config.pseudonymization.settings()
    client = make_client(settings)
    # In-executor mode has the keys at hand: tokens of every key version can then be matched.
    return client, (client.cipher.keyring if isinstance(settings, InExecutorSettings) else None)


def _entries(config, tables):
    entries = config.section("erasure").tables
    if tables:
        wanted = {config.table_name(t) for t in tables}
        known = {config.table_name(e.table) for e in entries}
        unknown = sorted(wanted - known)
        if unknown:
            raise ConfigError("%s: not configured as holding subject data (erasure.tables: %s)" % (
                ", ".join(unknown), ", ".join(sorted(known))))
        entries = [e for e in entries if config.table_name(e.table) in wanted]
    return entries


def erase(config, identifiers=(), pseudonyms=(), tables=None, dry_run=False, request_id=None, spark=None,
          session_factory=None):
    """Erase the subjects from the configured tables (or `tables` among them); returns the receipt."""
    started = time.time()
    entries = _entries(config, tables)
    client, keyring = _client(config)
    pseudonyms = list(pseudonyms or ())
    # Re-identified once: the plaintexts become subjects, and each given pseudonym is matched as it is.
    plains = reidentified(pseudonyms, client)
    subjects = resolve_subjects(list(identifiers or ()) + plains, [], client)
    by_identifier = {s.identifier: s.index for s in subjects}
    given_tokens = {token: by_identifier[plain] for token, plain in zip(pseudonyms, plains)}
    if keyring is not None:
        given_tokens.update(all_version_tokens(keyring, subjects))
    spark = LazySession(config, spark, session_factory).get()
    from lakehouse_ops.health import open_tables
    catalog_tables = open_tables(config.catalog)
    results, hits = [], {}
    for entry in entries:
        name = config.table_name(entry.table)
        eraser = _TableErasure(config, spark, catalog_tables, entry, name, subjects, client, given_tokens)
        try:
            result = eraser.run(dry_run)
        except LakehouseOpsError as exc:
            result = eraser.failed(exc)
        except Exception as exc:  # a Spark or catalog failure: named, never with values
            result = eraser.failed(exc)
        hits[name] = eraser.subjects_found
        results.append(result)
    ok = all(r["ok"] for r in results)
    found_anywhere = any(r["rows_deleted"] or r["snapshots_expired"] or r["found"] for r in results)
    receipt = {
        "receipt_version": RECEIPT_VERSION, "kind": "erasure", "request_id": request_id, "dry_run": dry_run,
        "started_at": iso_seconds(started), "finished_at": iso_seconds(time.time()),
        "subjects": found_in(subjects, hits), "found": found_anywhere, "ok": ok,
        "verified": ok and not dry_run and all(r["verification"].get("verified") for r in results),
        "tables": results,
        "summary": _summary(results, found_anywhere, dry_run, ok),
    }
    return receipt


def _summary(results, found_anywhere, dry_run, ok):
    if not ok:
        failed = [r["table"] for r in results if not r["ok"]]
        return "erasure NOT complete: %s (see each table's problems)" % ", ".join(failed)
    if not found_anywhere:
        return "the subjects appear in none of the %d table(s) checked, in no snapshot and no file" % len(results)
    if dry_run:
        return "dry run: the subjects were found; nothing was changed"
    rows = sum(r["rows_deleted"] for r in results)
    snaps = sum(len(r["snapshots_expired"]) for r in results)
    return "erased %d row(s), expired %d snapshot(s); verified: no remaining snapshot and no file in the table " \
           "locations holds the subjects" % (rows, snaps)


class _TableErasure:
    def __init__(self, config, spark, catalog_tables, entry, name, subjects, client, given_tokens):
        self.config, self.spark, self.catalog_tables = config, spark, catalog_tables
        self.entry, self.name, self.subjects, self.client = entry, name, subjects, client
        self.given_tokens = given_tokens
        self.ref = table_ref(config.catalog.name, name)
        self.subjects_found = set()
        self.result = {"table": name, "columns": list(entry.columns), "holds": entry.holds, "ok": False,
                       "found": False, "rows_deleted": 0, "delete_snapshot_id": None, "files_rewritten": 0,
                       "snapshots_expired": [], "files_removed": {}, "orphans": None,
                       "verification": {"verified": False}, "problems": [],
                       "started_at": iso_seconds(time.time())}

    def failed(self, exc):
        log.error("erasure failed", extra={"table": self.name, "error": first_line(exc)})
        self.result["problems"].append("%s: %s" % (type(exc).__name__, first_line(exc)))
        self.result["finished_at"] = iso_seconds(time.time())
        return self.result

    def _load(self):
        return meta_files.TableFiles(self.catalog_tables.load(self.name))

    def _field_ids(self, table):
        schema = table.schema()
        ids = []
        for column in self.entry.columns:
            try:
                field = schema.find_field(column)
            except ValueError:
                raise ConfigError("erasure column %r is not in %s (columns: %s)" % (
                    column, self.name, ", ".join(f.name for f in schema.fields))) from None
            if str(field.field_type) != "string":
                raise ConfigError("erasure column %r of %s is %s; subjects are matched in string columns"
                                  % (column, self.name, field.field_type))
            ids.append(field.field_id)
        return ids

    def _values(self, files, raw, field_ids):
        """{value in the table's columns: subject index}."""
        if self.entry.holds == "identifiers" or self.entry.match == "tokens":
            return table_values(self.entry, self.subjects, self.client, self.given_tokens)
        # match: reidentify: the distinct tokens of every referenced file, re-identified through the configured
        # mode; the tokens that stand for a subject are the values to erase.
        from lakehouse_ops.pseudo.spark import reidentify
        tokens = raw.distinct_values([meta.path for meta in files.files.values()
                                      if meta.content != meta_files.POSITION_DELETES])
        if not tokens:
            return {}
        df = self.spark.createDataFrame([(t, t) for t in tokens], "token string, plain string")
        wanted = {s.identifier: s.index for s in self.subjects}
        out = {}
        for row in reidentify(df, ["plain"], self.config.pseudonymization.settings()).collect():
            if row.plain in wanted:
                out[row.token] = wanted[row.plain]
        return out

    def _locate(self, files, raw, field_ids, values):
        keys = meta_files.candidates(files, field_ids, list(values))
        holding = raw.holding([files.files[k].path for k in keys], set(values))
        unknown = sorted(set(holding) - set(files.files))
        if unknown:
            raise ErasureError("%d file(s) read for %s could not be matched to the table metadata" % (
                len(unknown), self.name))
        return keys, holding

    def run(self, dry_run):
        r = self.result
        files = self._load()
        field_ids = self._field_ids(files.table)
        raw = _Raw(self.spark, field_ids)
        values = self._values(files, raw, field_ids)
        checked, holding = self._locate(files, raw, field_ids, values)
        for found in holding.values():
            self.subjects_found.update(values[v] for v in found)
        r["found"] = bool(holding)
        r["files_checked"] = len(checked)
        current = files.snapshots.get(files.current_snapshot_id, set())
        r["files_holding"] = len(holding)
        r["snapshots_holding"] = files.snapshots_holding(holding, include_current=True)
        log.info("subjects located", extra={"table": self.name, "files_checked": len(checked),
                                            "files_holding": len(holding), "dry_run": dry_run})
        if dry_run:
            r["ok"] = True
            r["verification"] = {"verified": None, "reason": "dry run"}
            r["finished_at"] = iso_seconds(time.time())
            return r
        if current & set(holding):
            self._delete(values, files)
            files = self._load()
            still = files.snapshots.get(files.current_snapshot_id, set()) & set(holding)
            if still:
                self._rewrite(values, len(still))
                files = self._load()
        self._expire(files, set(holding))
        self._orphans()
        self._verify(raw, field_ids, values)
        r["ok"] = not r["problems"]
        r["finished_at"] = iso_seconds(time.time())
        return r

    def _condition(self, values):
        listed = ", ".join(literal(v) for v in sorted(values))
        return " OR ".join("`%s` IN (%s)" % (c.replace("`", "``"), listed) for c in self.entry.columns)

    def _delete(self, values, files):
        # Under merge-on-read this only adds delete files; the bytes go in the rewrite that follows (run()).
        before = files.current_snapshot_id
        self.spark.sql("DELETE FROM %s WHERE %s" % (self.ref, self._condition(values)))
        ours = self._delete_commit(before)
        if ours is None:
            return  # no visible row matched: nothing was committed (hidden bytes are rewritten next)
        self.result["delete_snapshot_id"] = ours.snapshot_id
        # Counted at the snapshot the delete applied to: the summary's record counts would include rows that
        # earlier delete files already hid.
        self.result["rows_deleted"] = self.spark.sql("SELECT count(*) AS n FROM %s VERSION AS OF %d WHERE %s" % (
            self.ref, ours.parent_id, self._condition(values))).collect()[0].n
        summary = self.spark.sql("SELECT summary FROM %s.snapshots WHERE snapshot_id = %d" % (
            self.ref, ours.snapshot_id)).collect()[0].summary or {}
        self.result["files_rewritten"] = int(summary.get("deleted-data-files", 0))
        log.info("rows deleted", extra={"table": self.name, "rows": self.result["rows_deleted"],
                                        "files_rewritten": self.result["files_rewritten"]})

    def _delete_commit(self, before):
        """The snapshot our DELETE committed: the first overwrite/delete after `before` in the current lineage."""
        for snapshot in snapshots_since(self.spark, self.config.catalog.name, self.name, before):
            if snapshot.operation in ("overwrite", "delete"):
                return snapshot
        return None

    def _rewrite(self, values, count):
        """Files still holding bytes of rows that delete files already hid: rewrite them with deletes applied."""
        from lakehouse_ops.maintenance import compaction
        params = compaction.CompactionParams(strategy="binpack", where=self._condition(values),
                                             options={"rewrite-all": "true", "delete-file-threshold": "1"})
        plan = Plan(compaction.NAME, True, "rewrite the files holding erased rows", params)
        outputs = compaction.execute(self.spark, self.config.catalog.name, self.name, plan)
        rewritten = int(outputs.get("rewritten_data_files_count", 0))
        self.result["files_rewritten"] += rewritten
        log.info("files holding deleted rows rewritten", extra={"table": self.name, "files": rewritten,
                                                                "expected": count})

    def _expire(self, files, holding):
        ids = files.snapshots_holding(holding)
        pinned = {sid: name for name, sid in files.refs.items() if name != "main"}
        blocked = [sid for sid in ids if sid in pinned]
        for sid in blocked:
            self.result["problems"].append(
                "snapshot %d holds the subject and is the head of branch or tag '%s': drop or move that ref, then "
                "erase again" % (sid, pinned[sid]))
        ids = [sid for sid in ids if sid not in pinned]
        if not ids:
            return
        from lakehouse_ops.maintenance import snapshots
        oldest = min(files.snapshot_times.values())
        # older_than before the oldest snapshot: nothing but the listed snapshots expires.
        params = snapshots.ExpireParams(older_than_ms=oldest - 1000, retain_last=1, snapshot_ids=tuple(ids))
        plan = Plan(snapshots.NAME, True, "expire the snapshots holding the subject", params)
        out = snapshots.execute(self.spark, self.config.catalog.name, self.name, plan)
        self.result["snapshots_expired"] = ids
        self.result["files_removed"] = {k[len("deleted_"):-len("_count")]: int(v) for k, v in out.items()
                                        if k.startswith("deleted_") and v is not None}
        log.info("snapshots expired", extra={"table": self.name, "snapshots": len(ids)})

    def _orphans(self):
        from lakehouse_ops.errors import SafetyError
        from lakehouse_ops.health import table_health
        from lakehouse_ops.maintenance import orphans
        policy = self.config.policy_for(self.name)
        health = table_health(self.config, self.name, self.catalog_tables, policy)
        plan = orphans.plan(policy, health)
        if not plan.run:
            self.result["orphans"] = {"skipped": plan.reason}
            return
        try:
            self.result["orphans"] = orphans.execute(self.spark, self.config.catalog.name, self.name, plan)
        except SafetyError as exc:
            self.result["orphans"] = {"skipped": first_line(exc)}

    @staticmethod
    def _check_unreferenced(raw, paths, values):
        """({path: values} held by unreferenced Parquet files, [paths that cannot be read by field id])."""
        try:
            return raw.holding(paths, set(values)), []
        except Exception:
            if len(paths) == 1:
                return {}, list(paths)
        found, unreadable = {}, []
        for path in paths:  # one bad file (no field ids, truncated) must not hide the others
            held, bad = _TableErasure._check_unreferenced(raw, [path], values)
            found.update(held)
            unreadable += bad
        return found, unreadable

    def _verify(self, raw, field_ids, values):
        from lakehouse_ops.engine.fs import list_files
        files = self._load()
        problems = []
        checked, holding = self._locate(files, raw, field_ids, values)
        if holding:
            problems.append("%d file(s) of remaining snapshots still hold the subject" % len(holding))
        referenced = files.referenced()
        listed = list_files(self.spark, files.table.metadata.location)
        unreferenced = [(uri, size) for uri, size, _ in listed
                        if _spark_key(uri) not in referenced and not uri.endswith(".crc")]
        parquet = [uri for uri, _ in unreferenced if uri.endswith(".parquet")]
        unchecked = [uri for uri, _ in unreferenced if uri.endswith((".avro", ".orc"))]
        leftover, unreadable = self._check_unreferenced(raw, parquet, values)
        unchecked += unreadable
        if leftover:
            problems.append("%d unreferenced file(s) in the table location still hold the subject (younger than "
                            "the orphan age limit, or over its budget): erase again once orphan removal can take "
                            "them" % len(leftover))
        if unchecked:
            problems.append("%d unreferenced Avro/ORC file(s) in the table location could not be checked (e.g. %s)"
                            % (len(unchecked), unchecked[0].rsplit("/", 1)[-1]))
        named = [uri for uri, _, _ in listed if _names_value(uri, values)]
        if named:
            problems.append("%d file path(s) in the table location name the subject (identity partition on the "
                            "column?)" % len(named))
        self.result["problems"].extend(problems)
        self.result["verification"] = {
            "verified": not problems, "remaining_snapshots": len(files.snapshots),
            "referenced_files_checked": len(checked), "files_in_location": len(listed),
            "unreferenced_files": len(unreferenced), "unreferenced_parquet_checked": len(parquet),
            "checked_at": iso_seconds(time.time())}
        log.info("erasure verified" if not problems else "erasure NOT verified",
                 extra={"table": self.name, "problems": len(problems)})


def read_subjects(source):
    """Subjects, one per line, from a local file, an s3:// object or '-' (standard input). Files keep subjects out
    of command lines, shell history and EMR step arguments."""
    from lakehouse_ops.erasure.subjects import read_subject_lines
    if source == "-":
        import sys
        return read_subject_lines(sys.stdin.read(), "standard input")
    from lakehouse_ops.aws.textio import read_text
    return read_subject_lines(read_text(source, "subjects file"), source)


def receipt_destination(config, receipt, explicit=None):
    """`explicit`, else a file named after the run under erasure.receipts, else None."""
    if explicit:
        return explicit
    base = config.erasure.receipts if config.erasure is not None else None
    if not base:
        return None
    stamp = receipt["started_at"].replace(":", "").replace("-", "")
    name = "erasure-%s%s%s.json" % (stamp, "-" if receipt["request_id"] else "",
                                    _safe_name(receipt["request_id"] or ""))
    return base.rstrip("/") + "/" + name


def _safe_name(text):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]


def run_request(config, identifiers=(), identifiers_file=None, pseudonyms=(), pseudonyms_file=None, tables=None,
                dry_run=False, request_id=None, receipt_path=None, spark=None, session_factory=None):
    """Erase, then write the receipt (to `receipt_path` or the erasure.receipts location); returns the receipt."""
    from lakehouse_ops.aws.textio import write_json
    identifiers = list(identifiers) + (read_subjects(identifiers_file) if identifiers_file else [])
    pseudonyms = list(pseudonyms) + (read_subjects(pseudonyms_file) if pseudonyms_file else [])
    receipt = erase(config, identifiers, pseudonyms, tables=tables, dry_run=dry_run, request_id=request_id,
                    spark=spark, session_factory=session_factory)
    destination = receipt_destination(config, receipt, receipt_path)
    if destination:
        receipt["receipt_path"] = destination
        write_json(destination, receipt)
    return receipt
