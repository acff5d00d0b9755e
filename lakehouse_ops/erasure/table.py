"""The erasure of one table: locate the subject's files, delete the rows, rewrite files still holding their bytes,
expire the snapshots holding them, remove orphans, verify; the result goes in the receipt."""

import time
import uuid
from typing import Any, Dict, List, Optional, Set, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.config.sections import ErasureTable
from lakehouse_ops.erasure import files as meta_files
from lakehouse_ops.erasure.copies import check_copies
from lakehouse_ops.erasure.raw import Holding, RawReader, check_location
from lakehouse_ops.erasure.subjects import Subject
from lakehouse_ops.erasure.values import Values, values_for
from lakehouse_ops.errors import LakehouseOpsError, first_line
from lakehouse_ops.health.catalog import Tables
from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance.base import Plan
from lakehouse_ops.maintenance.verify import Snapshot, snapshots_since
from lakehouse_ops.sqltext import table_ref
from lakehouse_ops.units import iso_seconds

log = get_logger("erasure")


class ErasureError(LakehouseOpsError):
    """The erasure could not be carried out as asked (the receipt says how far it got)."""


class TableErasure:
    """One table's erasure: locate, delete, rewrite, expire, remove orphans, verify (see erasure.job)."""

    def __init__(
        self,
        config: Config,
        spark: Any,
        catalog_tables: Tables,
        entry: ErasureTable,
        name: str,
        subjects: List[Subject],
        client: Any,
        given_tokens: Optional[Dict[str, int]],
    ) -> None:
        self.config, self.spark, self.catalog_tables = config, spark, catalog_tables
        self.entry, self.name, self.subjects, self.client = entry, name, subjects, client
        self.given_tokens = given_tokens
        self.ref = table_ref(config.catalog.name, name)
        self.subjects_found: Set[int] = set()
        self.result: Dict[str, Any] = {
            "table": name,
            "columns": list(entry.columns),
            "holds": entry.holds,
            "ok": False,
            "found": False,
            "rows_deleted": 0,
            "delete_snapshot_id": None,
            "files_rewritten": 0,
            "snapshots_expired": [],
            "files_removed": {},
            "orphans": None,
            "verification": {"verified": False},
            "problems": [],
            "started_at": iso_seconds(time.time()),
        }

    def failed(self, exc: BaseException) -> Dict[str, Any]:
        """The result of an erasure that raised `exc` (logged and named among its problems)."""
        log.error("erasure failed", extra={"table": self.name, "error": first_line(exc)})
        self.result["problems"].append("%s: %s" % (type(exc).__name__, first_line(exc)))
        self.result["finished_at"] = iso_seconds(time.time())
        return self.result

    def _load(self) -> meta_files.TableFiles:
        return meta_files.TableFiles(self.catalog_tables.load(self.name))

    def _values(self, files: meta_files.TableFiles, raw: RawReader) -> Values:
        values, versions = values_for(
            self.spark, self.config, self.entry, self.subjects, self.client, self.given_tokens, files, raw
        )
        if versions is not None:
            self.result["key_versions"] = versions
        return values

    def _locate(
        self, files: meta_files.TableFiles, raw: RawReader, field_ids: List[int], values: Values
    ) -> Tuple[List[str], Holding]:
        keys = meta_files.candidates(files, field_ids, list(values))
        holding = raw.holding([files.files[k].path for k in keys], set(values))
        unknown = sorted(set(holding) - set(files.files))
        if unknown:
            raise ErasureError(
                "%d file(s) read for %s could not be matched to the table metadata" % (len(unknown), self.name)
            )
        return keys, holding

    def run(self, dry_run: bool) -> Dict[str, Any]:
        r = self.result
        files = self._load()
        field_ids = meta_files.string_field_ids(files.table.schema(), self.entry.columns, self.name)
        raw = RawReader(self.spark, field_ids)
        values = self._values(files, raw)
        checked, holding = self._locate(files, raw, field_ids, values)
        for found in holding.values():
            self.subjects_found.update(values[v] for v in found)
        r["found"] = bool(holding)
        r["files_checked"] = len(checked)
        current = files.snapshots.get(files.current_snapshot_id, set())
        r["files_holding"] = len(holding)
        r["snapshots_holding"] = files.snapshots_holding(holding, include_current=True)
        log.info(
            "subjects located",
            extra={
                "table": self.name,
                "files_checked": len(checked),
                "files_holding": len(holding),
                "dry_run": dry_run,
            },
        )
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
                self._rewrite(len(still))
                files = self._load()
        self._expire(files, set(holding))
        self._orphans()
        self._verify(raw, field_ids, values)
        r["ok"] = not r["problems"]
        r["finished_at"] = iso_seconds(time.time())
        return r

    def _condition(self, view: str) -> str:
        """The rows holding a subject: the columns against the values in temporary view `view` (never the values
        themselves in a statement, which Spark's UI and event log keep)."""
        return " OR ".join("`%s` IN (SELECT v FROM %s)" % (c.replace("`", "``"), view) for c in self.entry.columns)

    def _delete(self, values: Values, files: meta_files.TableFiles) -> None:
        from lakehouse_ops.engine.frames import frame

        # Under merge-on-read this only adds delete files; the bytes go in the rewrite that follows (run()).
        before = files.current_snapshot_id
        view = "lakehouse_ops_erase_%s" % uuid.uuid4().hex
        frame(self.spark, {"v": sorted(values)}, "v string").createOrReplaceTempView(view)
        try:
            self.spark.sql("DELETE FROM %s WHERE %s" % (self.ref, self._condition(view)))
            self._deleted(before, view)
        finally:
            self.spark.catalog.dropTempView(view)

    def _deleted(self, before: Optional[int], view: str) -> None:
        """What our DELETE (committed after snapshot `before`) did, into the result."""
        ours = self._delete_commit(before)
        if ours is None:
            return  # no visible row matched: nothing was committed (hidden bytes are rewritten next)
        self.result["delete_snapshot_id"] = ours.snapshot_id
        if ours.parent_id is None:  # a DELETE that matched rows had a table to apply to
            raise ErasureError("delete snapshot %d of %s has no parent" % (ours.snapshot_id, self.name))
        # Counted at the snapshot the delete applied to: the summary's record counts would include rows that
        # earlier delete files already hid.
        self.result["rows_deleted"] = (
            self.spark.sql(
                "SELECT count(*) AS n FROM %s VERSION AS OF %d WHERE %s"
                % (self.ref, ours.parent_id, self._condition(view))
            )
            .collect()[0]
            .n
        )
        summary = (
            self.spark.sql("SELECT summary FROM %s.snapshots WHERE snapshot_id = %d" % (self.ref, ours.snapshot_id))
            .collect()[0]
            .summary
            or {}
        )
        self.result["files_rewritten"] = int(summary.get("deleted-data-files", 0))
        log.info(
            "rows deleted",
            extra={
                "table": self.name,
                "rows": self.result["rows_deleted"],
                "files_rewritten": self.result["files_rewritten"],
            },
        )

    def _delete_commit(self, before: Optional[int]) -> Optional[Snapshot]:
        """The snapshot our DELETE committed: the first overwrite/delete after `before` in the current lineage."""
        for snapshot in snapshots_since(self.spark, self.config.catalog.name, self.name, before):
            if snapshot.operation in ("overwrite", "delete"):
                return snapshot
        return None

    def _rewrite(self, count: int) -> None:
        """Files still holding bytes of rows that delete files already hid: every file with a delete file is
        rewritten with its deletes applied (chosen by their deletes, not by the subjects' values: a procedure's
        arguments are kept in Spark's UI and event log)."""
        from lakehouse_ops.maintenance import compaction

        params = compaction.CompactionParams(strategy="binpack", where=None, options={"delete-file-threshold": "1"})
        plan = Plan(compaction.NAME, True, "rewrite the files holding erased rows", params)
        outputs = compaction.execute(self.spark, self.config.catalog.name, self.name, plan)
        rewritten = int(outputs.get("rewritten_data_files_count", 0))
        self.result["files_rewritten"] += rewritten
        log.info(
            "files holding deleted rows rewritten", extra={"table": self.name, "files": rewritten, "expected": count}
        )

    def _expire(self, files: meta_files.TableFiles, holding: Set[str]) -> None:
        ids = files.snapshots_holding(holding)
        pinned = {sid: name for name, sid in files.refs.items() if name != "main"}
        blocked = [sid for sid in ids if sid in pinned]
        for sid in blocked:
            self.result["problems"].append(
                "snapshot %d holds the subject and is the head of branch or tag '%s': drop or move that ref, then "
                "erase again" % (sid, pinned[sid])
            )
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
        self.result["files_removed"] = {
            k[len("deleted_") : -len("_count")]: int(v)
            for k, v in out.items()
            if k.startswith("deleted_") and v is not None
        }
        log.info("snapshots expired", extra={"table": self.name, "snapshots": len(ids)})

    def _orphans(self) -> None:
        from lakehouse_ops.errors import SafetyError
        from lakehouse_ops.health import table_health
        from lakehouse_ops.maintenance import orphans

        policy = self.config.policy_for(self.name)
        health = table_health(self.config, self.name, self.catalog_tables, policy, spark=lambda: self.spark)
        plan = orphans.plan(policy, health)
        if not plan.run:
            self.result["orphans"] = {"skipped": plan.reason}
            return
        try:
            plan = orphans.with_neighbors(plan, self.name, self.catalog_tables.reaches(), policy.orphans.ignore_tables)
            self.result["orphans"] = orphans.execute(self.spark, self.config.catalog.name, self.name, plan)
        except SafetyError as exc:
            self.result["orphans"] = {"skipped": first_line(exc)}

    def _verify(self, raw: RawReader, field_ids: List[int], values: Values) -> None:
        """No remaining snapshot's file, no file in the location, no copy S3 keeps of deleted files (noncurrent
        versions, replicas) holds the subject."""
        files = self._load()
        checked, holding = self._locate(files, raw, field_ids, values)
        problems = ["%d file(s) of remaining snapshots still hold the subject" % len(holding)] if holding else []
        location_problems, location_counts = check_location(self.spark, files, raw, values)
        problems += location_problems
        counts: Dict[str, Any] = dict(location_counts)
        versioned = self.config.policy_for(self.name).storage.versioned_deletes
        copy_problems, copies = check_copies(str(files.table.metadata.location), versioned)
        problems += copy_problems
        if copies:
            counts["copies"] = copies
        self.result["problems"].extend(problems)
        self.result["verification"] = {
            "verified": not problems,
            "remaining_snapshots": len(files.snapshots),
            "referenced_files_checked": len(checked),
            **counts,
            "checked_at": iso_seconds(time.time()),
        }
        log.info(
            "erasure verified" if not problems else "erasure NOT verified",
            extra={"table": self.name, "problems": len(problems)},
        )
