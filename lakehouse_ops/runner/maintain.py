"""The maintenance lifecycle: per table, health -> plan -> execute in order -> verify -> health -> report.

Healthy tables cost one metadata read and no Spark: the session is built the first time an action must run.
One failing table never stops the others; deletions are not run on a table after one of its actions failed. A
rewrite that leaves planned partitions behind is completed (runner/completion.py) or reported `partial`.
"""

import fnmatch
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from lakehouse_ops.config import Config, TablePolicy
from lakehouse_ops.emf import emit
from lakehouse_ops.engine.diagnose import what_is_missing
from lakehouse_ops.engine.history import record_run
from lakehouse_ops.errors import CatalogError, LakehouseOpsError
from lakehouse_ops.errors import first_line as _first_line
from lakehouse_ops.health import TableHealth, open_tables, table_health
from lakehouse_ops.health.catalog import Tables
from lakehouse_ops.health.partitions import in_catalog
from lakehouse_ops.health.reach import Reach
from lakehouse_ops.lease import Leases
from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance import ORDER, plan_one
from lakehouse_ops.maintenance.base import DONE, FAILED, PARTIAL, SKIPPED, Action, Plan, Result
from lakehouse_ops.maintenance.commits import retry_policy, with_commit_retries
from lakehouse_ops.runner.completion import complete
from lakehouse_ops.runner.metrics import maintain_documents
from lakehouse_ops.runner.past import PastRuns
from lakehouse_ops.units import iso_seconds as _iso
from lakehouse_ops.units import now_ms

log = get_logger("runner")
PLANNED = "planned"


def resolve_tables(config: Config, catalog_tables: Tables, patterns: Optional[Sequence[str]] = None) -> List[str]:
    """Table names for the given names/globs; with none, every table a rule matches (all, with no rules)."""
    if not patterns:
        return [t for t in catalog_tables.list_tables() if config.is_managed(t)]
    listing: Optional[List[str]] = None
    names: List[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            listing = catalog_tables.list_tables() if listing is None else listing
            hits = [t for t in listing if fnmatch.fnmatchcase(t.lower(), config.table_name(pattern).lower())]
            if not hits:
                raise CatalogError("no table in catalog '%s' matches '%s'" % (config.catalog.name, pattern))
            names.extend(hits)
        else:
            names.append(config.table_name(pattern))
    return list(dict.fromkeys(names))


def _planned(action: str, plan: Plan) -> Result:
    outputs = {
        "params": plan.to_dict()["params"],
        "partitions": list(plan.partitions),
        "estimated_bytes": plan.estimated_bytes,
    }
    return Result(action, PLANNED, plan.reason, outputs=outputs)


class MaintenanceRunner:
    """Maintains tables one after another under the config's policies; `run` returns the report."""

    def __init__(
        self,
        config: Config,
        spark: Any = None,
        only: Optional[Iterable[str]] = None,
        catalog_tables: Optional[Tables] = None,
        session_factory: Optional[Callable[[], Any]] = None,
        leases: Optional[Leases] = None,
        written_within_hours: Optional[float] = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        from lakehouse_ops.engine.session import LazySession

        self.config = config
        self._session = LazySession(config, spark, session_factory)
        self.only: Optional[Set[str]] = set(only) if only else None
        self.catalog_tables = catalog_tables or open_tables(config.catalog)
        if leases is None and config.ship is not None and config.ship.leases:
            leases = Leases(config.ship.leases, config.ship.lease_minutes)
        self.leases = leases
        # Compaction of recently written partitions only (hourly schedules); the policy's value otherwise.
        self.written_within_hours = written_within_hours
        # The instant health and plans are judged at (epoch ms): tests set time instead of sleeping.
        self.clock = clock
        self._table_reaches: Optional[Reach] = None
        self.past = PastRuns(config, self.catalog_tables)  # the circuit breaker's view of earlier runs

    def _policy(self, table: str) -> TablePolicy:
        policy = self.config.policy_for(table)
        if self.written_within_hours:
            policy = policy.model_copy(
                update={
                    "compaction": policy.compaction.model_copy(
                        update={"only_written_within_hours": self.written_within_hours}
                    )
                }
            )
        return policy

    @property
    def spark(self) -> Any:
        return self._session.get()

    def _reaches(self) -> Reach:
        """Where every table of the catalog may keep files, read once per run."""
        if self._table_reaches is None:
            self._table_reaches = self.catalog_tables.reaches()
        return self._table_reaches

    def _health(self, table: str, policy: TablePolicy) -> TableHealth:
        return table_health(self.config, table, self.catalog_tables, policy, self.clock(), spark=self._session.get)

    def run(self, patterns: Optional[Sequence[str]] = None, dry_run: bool = False) -> Dict[str, Any]:
        started = time.time()
        report: Dict[str, Any] = {
            "ok": True,
            "dry_run": dry_run,
            "catalog": self.config.catalog.name,
            "config": self.config.source,
            "started_at": _iso(started),
            "tables": [],
        }
        try:
            tables = resolve_tables(self.config, self.catalog_tables, patterns)
        except LakehouseOpsError as exc:
            report.update(ok=False, error=str(exc))
            tables = []
        for table in tables:
            entry = self._leased(table, dry_run)
            report["tables"].append(entry)
            report["ok"] = report["ok"] and entry["ok"]
        if self.past.note:
            report["breaker"] = self.past.note
        if self.config.metrics.emf and not dry_run:
            report["emf_lines"] = emit(maintain_documents(self.config, report))
        report["finished_at"] = _iso(time.time())
        report["duration_s"] = round(time.time() - started, 3)
        if report["tables"]:
            record_run(self._session.get, self.config, "maintain", report, dry_run, self._session.started)
        return report

    def _leased(self, table: str, dry_run: bool) -> Dict[str, Any]:
        """Run one table under its lease (when leases are configured): a table another run holds is skipped."""
        if self.leases is None or dry_run:
            return self._run_table(table, dry_run)
        taken, holder = self.leases.acquire(table)
        if not taken:
            holder = holder or {}
            log.warning(
                "table skipped: another maintenance run holds its lease",
                extra={"table": table, "holder": holder.get("owner"), "until": holder.get("expires_at")},
            )
            return {
                "table": table,
                "ok": True,
                "skipped": "another maintenance run (%s) holds the table's lease "
                "until %s" % (holder.get("owner"), _iso(holder.get("expires_at", 0))),
                "actions": [],
                "before": None,
                "after": None,
            }
        try:
            return self._run_table(table, dry_run)
        finally:
            self.leases.release(table)

    def _run_table(self, table: str, dry_run: bool) -> Dict[str, Any]:
        entry: Dict[str, Any] = {
            "table": table,
            "ok": True,
            "rules": [r.label for r in self.config.rules_for(table)],
            "before": None,
            "after": None,
            "actions": [],
        }
        try:
            policy = self._policy(table)
            health = self._health(table, policy)
        except Exception as exc:  # a missing or unreadable table must not stop the others
            entry.update(ok=False, error=_first_line(exc))
            log.error("cannot read table health", extra={"table": table, "error": _first_line(exc)})
            return entry
        entry["before"] = health.to_dict()
        failed = incomplete = False
        changed = False
        for module in ORDER:
            if self.only is not None and module.NAME not in self.only:
                continue
            lost = self.leases.lost(table) if self.leases is not None and not dry_run else None
            if lost:  # another run works on the table now: nothing more is done to it
                entry["actions"].append(Result(module.NAME, SKIPPED, "not run: %s" % lost).to_dict())
                failed = True
                continue
            if changed:
                health = self._health(table, policy)
            result = self._run_action(module, table, policy, health, dry_run, failed)
            entry["actions"].append(result.to_dict())
            if result.status == FAILED:
                failed = True
            incomplete = incomplete or result.status == PARTIAL
            changed = result.status in (DONE, PARTIAL)
        if not dry_run:
            try:
                entry["after"] = self._health(table, policy).to_dict()
            except Exception as exc:
                entry["after_error"] = _first_line(exc)
        # A partial action committed what it did (deletions still run), but the run did not do what it planned.
        entry["ok"] = not (failed or incomplete)
        return entry

    def _run_action(
        self, module: Action, table: str, policy: TablePolicy, health: TableHealth, dry_run: bool, failed_earlier: bool
    ) -> Result:
        plan = plan_one(module, policy, health, self.clock())
        # An action that must know the catalog's other tables (for this plan).
        if plan.run and hasattr(module, "with_neighbors") and getattr(module, "needs_neighbors", bool)(plan):
            try:
                plan = module.with_neighbors(plan, table, self._reaches(), policy.orphans.ignore_tables)
            except Exception as exc:  # without them it cannot run safely
                return Result(
                    module.NAME, FAILED, "cannot list where the catalog's tables keep files: %s" % _first_line(exc)
                )
        if not plan.run:
            return Result(module.NAME, SKIPPED, plan.reason)
        held = self.past.suspension(table, module.NAME, policy.breaker, self.clock())
        if held is not None:
            return Result(module.NAME, SKIPPED, held.reason())
        if dry_run:
            return _planned(module.NAME, plan)
        if module.DELETES_FILES and failed_earlier:
            return Result(module.NAME, SKIPPED, "not run: an earlier action on this table failed")
        started = time.time()
        outputs: Dict[str, Any] = {}
        try:
            outputs, before_id = self._execute(module, table, policy, plan)
            status, note = DONE, None
            if module.REWRITES_DATA and hasattr(module, "remaining") and before_id is not None:
                status, note = complete(
                    module,
                    policy,
                    plan,
                    before_id,
                    outputs,
                    load_table=lambda: self.catalog_tables.load(table),
                    execute=lambda rest: self._execute(module, table, policy, rest),
                )
            elif outputs.get("left_behind"):  # an action that knows it did only part of its plan says so
                status, note = PARTIAL, "plan not achieved: %s" % outputs["left_behind"]["reason"]
            summary = "%s: %s" % (module.summarize(outputs), plan.reason)
            reason = summary if note is None else "%s; %s" % (note, summary)
        except Exception as exc:
            status, reason = FAILED, _first_line(exc)
            missing = what_is_missing(exc)
            if missing is not None:
                reason = "%s (%s)" % (missing, reason)
            log.error("maintenance action failed", extra={"table": table, "action": module.NAME, "error": reason})
        duration = round(time.time() - started, 3)
        log.info(
            "maintenance action finished",
            extra={"table": table, "action": module.NAME, "status": status, "duration_s": duration},
        )
        return Result(module.NAME, status, reason, outputs=outputs, duration_s=duration)

    def _execute(
        self, module: Action, table: str, policy: TablePolicy, plan: Plan
    ) -> Tuple[Dict[str, Any], Optional[int]]:
        """(outputs, snapshot before): run the plan, retrying commit conflicts if the action commits, and verify
        a data rewrite row for row (rolled back on mismatch)."""
        spark = self.spark
        catalog = self.config.catalog.name
        before_id = None
        if module.REWRITES_DATA:
            from lakehouse_ops.maintenance.verify import current_snapshot_id

            before_id = current_snapshot_id(spark, catalog, table)
        if module.COMMITS:
            outputs, attempts = with_commit_retries(
                retry_policy(policy.commits),
                lambda: module.execute(spark, catalog, table, plan) or {},
                table,
                module.NAME,
            )
            outputs["attempts"] = attempts
        else:
            outputs = module.execute(spark, catalog, table, plan) or {}
        if module.REWRITES_DATA:
            from lakehouse_ops.maintenance.verify import verify_rewrites

            outputs["verification"] = verify_rewrites(
                spark, catalog, table, before_id, where=in_catalog(getattr(plan.params, "where", None), catalog)
            )
        return outputs, before_id
