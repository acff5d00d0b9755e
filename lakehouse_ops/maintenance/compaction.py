"""Compaction (rewrite_data_files): binpack, sort or z-order, only where the small files are (scaled z-order:
our own rewrite in zorder.py).

Partitions qualify when their small-file count and ratio, or their delete files (count, or the share of rows they
name: equality deletes are converted by rewriting the data they apply to), cross the policy's thresholds;
partitions written within `skip_recent_hours` are left to their active writer. The selection becomes
the procedure's `where` filter on the source columns.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from lakehouse_ops.config.policy import CompactionPolicy, TablePolicy
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.errors import MaintenanceError
from lakehouse_ops.health.partitions import in_catalog
from lakehouse_ops.health.scan import PartitionHealth, TableHealth
from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance import zorder
from lakehouse_ops.maintenance.base import Params, Plan, left_behind_reason, params_of, skip
from lakehouse_ops.units import HOUR_MS, human_bytes
from lakehouse_ops.units import now_ms as _now_ms

NAME = "compaction"
COMMITS, REWRITES_DATA, DELETES_FILES = True, True, False
SCALED = "zorder-scaled"
NEWER_OPTIONS = ("remove-dangling-deletes", "delete-ratio-threshold")  # not in every EMR 7.x Iceberg
log = get_logger("compaction")


@dataclass(frozen=True)
class CompactionParams(Params):
    strategy: str  # binpack, sort (Iceberg's z-order is a sort) or zorder-scaled
    options: Mapping[str, str]  # rewrite_data_files options
    where: Optional[str] = None  # the partitions selected, as a filter on source columns; None: all
    sort_order: Optional[str] = None  # None: the table's own sort order (with strategy sort)
    zorder_columns: Tuple[str, ...] = ()  # with strategy zorder-scaled (our rewrite, zorder.py)


Parts = List[PartitionHealth]


def _strategy(policy: TablePolicy, health: TableHealth) -> Tuple[str, Optional[str], str]:
    """(strategy argument, sort_order argument, note) for the procedure."""
    c = policy.compaction
    if c.strategy == "zorder" and c.zorder_method == "scaled" and health.format_version < 3:
        return SCALED, None, "scaled z-order on %s" % ", ".join(c.zorder_columns)
    if c.strategy == "zorder" and c.zorder_method == "scaled":
        # Row lineage (_row_id) survives Iceberg's own rewrites only: a v3 table gets Iceberg's z-order.
        return (
            "sort",
            "zorder(%s)" % ",".join(c.zorder_columns),
            "Iceberg's z-order on %s (scaled z-order would not carry a v3 table's row lineage)"
            % ", ".join(c.zorder_columns),
        )
    if c.strategy == "zorder":
        return "sort", "zorder(%s)" % ",".join(c.zorder_columns), "z-order on %s" % ", ".join(c.zorder_columns)
    if c.strategy == "sort":
        if c.sort_order:
            return "sort", ", ".join(c.sort_order), "sort by %s" % ", ".join(c.sort_order)
        if health.sort_order:
            return "sort", None, "sort by the table's sort order (%s)" % ", ".join(health.sort_order)
        return "binpack", None, "binpack (sort requested, but neither the policy nor the table has a sort order)"
    return "binpack", None, "binpack"


def _options(policy: TablePolicy, by_deletes: bool = False) -> Dict[str, str]:
    """Iceberg's rewrite options. `by_deletes`: a partition was chosen for its delete files, so every data file
    a delete applies to is rewritten (Iceberg's own ratio counts only file-scoped position deletes)."""
    c = policy.compaction
    options = {
        "target-file-size-bytes": str(policy.target_file_size),
        "min-input-files": str(c.min_input_files),
        "max-concurrent-file-group-rewrites": str(c.max_concurrent_file_group_rewrites),
        "partial-progress.enabled": str(c.partial_progress).lower(),
        "partial-progress.max-commits": str(c.partial_progress_max_commits),
        "rewrite-job-order": c.rewrite_job_order,
        "delete-file-threshold": "1" if by_deletes else str(c.delete_file_threshold),
        "delete-ratio-threshold": str(c.delete_ratio_threshold),
    }
    if c.remove_dangling_deletes:
        options["remove-dangling-deletes"] = "true"
    options.update(c.options)
    return options


def _deletes_reason(part: PartitionHealth, c: CompactionPolicy) -> Optional[str]:
    """Why the partition's delete files call for a rewrite of the data they apply to, or None. Dangling ones
    apply to nothing: they are left to a metadata-only removal."""
    live = part.delete_files - part.dangling_delete_files
    if not live:
        return None
    if live >= c.delete_file_threshold:
        return "%d delete files" % live
    if part.records and part.delete_records / part.records >= c.delete_ratio_threshold:
        return "deletes name %.0f%% of its %d rows (%d position, %d equality delete files)" % (
            100.0 * part.delete_records / part.records,
            part.records,
            part.position_delete_files,
            part.equality_delete_files,
        )
    return None


def _qualifies(part: PartitionHealth, c: CompactionPolicy) -> Optional[str]:
    """Why the partition needs compaction, or None.

    Only small files that no earlier rewrite produced count: sorted output compresses better than estimated, so
    compaction leaves files a little under target, and counting those would rewrite the partition every run.
    """
    by_deletes = _deletes_reason(part, c)
    if by_deletes is not None:
        return by_deletes
    new_small = part.new_small_files
    if new_small >= c.min_input_files and part.data_files and new_small / part.data_files >= c.min_small_file_ratio:
        return "%d of %d files small" % (new_small, part.data_files)
    return None


def _select(c: CompactionPolicy, health: TableHealth, now_ms: int) -> Tuple[Parts, Parts, Parts, Dict[str, str]]:
    """(chosen, recently written, outside the window, {partition: why}) of the partitions that qualify."""
    recent_cutoff = now_ms - int(c.skip_recent_hours * HOUR_MS)
    window = c.only_written_within_hours
    window_cutoff = now_ms - int(window * HOUR_MS) if window else None
    chosen, recent, older, why = [], [], [], {}
    for part in health.partitions:
        reason = _qualifies(part, c)
        if reason is None:
            continue
        if c.skip_recent_hours and part.last_updated_ms >= recent_cutoff:
            recent.append(part)
        elif window_cutoff is not None and part.last_updated_ms < window_cutoff:
            older.append(part)
        else:
            chosen.append(part)
            why[part.partition] = reason
    return chosen, recent, older, why


def _reason(
    note: str, chosen: Parts, why: Dict[str, str], estimated: int, recent: Parts, older: Parts, window: Optional[float]
) -> str:
    """Why compaction runs: the strategy, the first partitions and why each qualifies, the bytes, what is left."""
    reason = "%s on %d partition(s): %s" % (
        note,
        len(chosen),
        "; ".join("%s (%s)" % (p.partition or "unpartitioned", why.get(p.partition, "selected")) for p in chosen[:5]),
    )
    if len(chosen) > 5:
        reason += "; and %d more" % (len(chosen) - 5)
    reason += "; about %s to rewrite" % human_bytes(estimated)
    if recent:
        reason += "; %d recently written partition(s) left alone" % len(recent)
    if older:
        reason += "; only partitions written within %gh (%d older ones left)" % (window or 0, len(older))
    return reason


def _nothing_to_do(c: CompactionPolicy, health: TableHealth, recent: Parts, older: Parts) -> str:
    note = " (%d partitions written within %sh left alone)" % (len(recent), c.skip_recent_hours) if recent else ""
    if older:
        note += " (%d partitions not written within the last %gh left for a full run)" % (
            len(older),
            c.only_written_within_hours or 0,
        )
    return (
        "no partition crosses the thresholds: >= %d small files not yet compacted and >= %.0f%% small, or >= %d "
        "delete files, or deletes naming >= %.0f%% of its rows; table small-file ratio %.0f%%%s"
        % (
            c.min_input_files,
            c.min_small_file_ratio * 100,
            c.delete_file_threshold,
            c.delete_ratio_threshold * 100,
            health.small_file_ratio * 100,
            note,
        )
    )


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    c = policy.compaction
    if not c.enabled:
        return skip(NAME, "disabled by policy (compaction.enabled=false)")
    if not health.data_files:
        return skip(NAME, "table has no data files")
    chosen, recent, older, why = _select(c, health, _now_ms() if now_ms is None else now_ms)
    if not chosen:
        return skip(NAME, _nothing_to_do(c, health, recent, older))

    strategy, sort_order, note = _strategy(policy, health)
    left_alone = recent + older
    whole_table = not left_alone and len(chosen) == len(health.partitions)
    filters = [p.filter for p in chosen]
    if whole_table or (not left_alone and any(f is None for f in filters)):
        where = None
    else:
        expressible = [p for p in chosen if p.filter is not None]
        if not expressible:
            return skip(
                NAME,
                "qualifying partitions cannot be selected by a filter on source columns while "
                "other partitions must be left alone; compact them when the writer is done",
            )
        chosen = expressible
        where = " OR ".join("(%s)" % p.filter for p in chosen) if len(chosen) > 1 else chosen[0].filter
    if c.where:
        where = "(%s) AND (%s)" % (c.where, where) if where else c.where

    estimated = sum(p.small_bytes if strategy == "binpack" else p.data_bytes for p in chosen)  # sorts rewrite all
    reason = _reason(note, chosen, why, estimated, recent, older, c.only_written_within_hours)
    by_deletes = any(_deletes_reason(p, c) for p in chosen)
    params = CompactionParams(
        strategy=strategy,
        options=_options(policy, by_deletes),
        where=where,
        sort_order=sort_order,
        zorder_columns=tuple(c.zorder_columns) if strategy == SCALED else (),
    )
    return Plan(
        action=NAME,
        run=True,
        reason=reason,
        params=params,
        partitions=tuple(p.partition for p in chosen),
        estimated_bytes=estimated,
    )


def remaining(plan: Plan, policy: TablePolicy, table: Any, before_id: int) -> Optional[Plan]:
    """What the rewrite left behind: the planned partitions where at least min_input_files of the small files it
    set out to rewrite (those live at `before_id`) are still live. A plan for those partitions alone, or None
    when the plan was achieved. Files other writers added meanwhile do not count."""
    from lakehouse_ops.health.files import still_live, where_for
    from lakehouse_ops.health.scan import small_file_limit

    still, now = still_live(table, before_id, plan.partitions, below=small_file_limit(policy))
    left = {p: paths for p, paths in still.items() if len(paths) >= policy.compaction.min_input_files}
    if not left:
        return None
    params = params_of(plan, CompactionParams)
    return Plan(
        action=NAME,
        run=True,
        reason=left_behind_reason("small file(s)", left),
        params=dataclasses.replace(params, where=where_for(now, left, policy.compaction.where, params.where)),
        partitions=tuple(sorted(left)),
        estimated_bytes=sum(now[p].sizes[path] for p, paths in left.items() for path in paths),
    )


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, CompactionParams)
    if p.strategy == SCALED:
        target = int(p.options["target-file-size-bytes"])
        return zorder.rewrite(spark, catalog, table, p.zorder_columns, in_catalog(p.where, catalog), target)
    args = {
        "table": table,
        "strategy": p.strategy,
        "sort_order": p.sort_order,
        "options": dict(p.options),
        "where": in_catalog(p.where, catalog),
    }
    totals: Dict[str, Any] = {}
    for row in _rewrite(spark, catalog, args):
        for key, value in row.items():
            totals[key] = totals.get(key, 0) + (value or 0)
    return totals


def _rewrite(spark: Any, catalog: str, args: Dict[str, Any]) -> List[Dict[str, Any]]:
    """rewrite_data_files; an option newer than the cluster's Iceberg (it refuses options it does not know) is
    dropped, with a warning, and the call made again."""
    while True:
        try:
            return call(spark, catalog, "rewrite_data_files", args)
        except MaintenanceError as exc:
            unknown = [o for o in NEWER_OPTIONS if o in args["options"] and o in str(exc) and "options" in str(exc)]
            if not unknown:
                raise
            log.warning(
                "this Iceberg version does not know a rewrite option; rewriting without it",
                extra={"option": unknown[0]},
            )
            args = dict(args, options={k: v for k, v in args["options"].items() if k != unknown[0]})


def summarize(outputs: Dict[str, Any]) -> str:
    return "rewrote %d data files into %d (%s)" % (
        outputs.get("rewritten_data_files_count", 0),
        outputs.get("added_data_files_count", 0),
        human_bytes(outputs.get("rewritten_bytes_count", 0)),
    )
