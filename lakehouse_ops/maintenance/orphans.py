"""Remove orphan files (remove_orphan_files), guarded twice.

0. The catalog's other tables (`with_neighbors`, from where each may keep files: health/reach.py): a table at or
   above this location makes the removal refuse (its files would look like orphans), and so does a table whose
   reach cannot be read; the files other tables keep inside the location are never candidates, nor is a file
   under a directory holding another table's metadata (a table no catalog listing shows), nor one referenced by a
   table that once kept files at or above the location (moved with SET LOCATION, a data path).
1. A dry run finds the candidates (Iceberg's own checks: older than the cut-off, unreferenced by any snapshot).
2. Our guards: only candidates under the table's own data and metadata directories are taken (what else lies in
   the location was put there by someone else: a table that once wrote there, perhaps; it is left and named), none
   whose path its FileIO would read otherwise (`?`, `#`); every candidate lies inside the table location; the
   candidates fit the deletion budget (max files, max bytes); otherwise nothing is deleted.
3. If no commit landed since the dry run (the table's metadata file is the same before it and now), the dry run's
   check against that very metadata still holds: exactly the checked candidates are deleted, in bulk (on S3 by the
   process's adaptive client, else the table's FileIO). Otherwise the real run is handed exactly the checked
   candidates as its file list (`file_list_view`), so it deletes nothing we did not check, and Iceberg re-checks
   each one against the new metadata.
4. Afterwards: every deleted file is gone, and (if a commit landed meanwhile) none is referenced by any snapshot.
With `orphans.trash` on, step 3 moves the checked candidates into the table's trash instead (`trash.py`), and old
trash batches are purged.
"""

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from lakehouse_ops.config.policy import ORPHAN_MIN_AGE_HOURS, FileListSource, TablePolicy
from lakehouse_ops.engine.fs import stat_many, through_boto3
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.engine.tables import current_metadata, delete_files, jvm_table
from lakehouse_ops.errors import SafetyError
from lakehouse_ops.health.reach import Reach, nested_in, own_directories
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance import orphan_lists as lists
from lakehouse_ops.maintenance import trash
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip
from lakehouse_ops.maintenance.storage import after_deletes
from lakehouse_ops.paths import normalize, same_location, within
from lakehouse_ops.sqltext import Timestamp
from lakehouse_ops.units import HOUR_MS, human_bytes, iso_utc
from lakehouse_ops.units import now_ms as _now_ms

NAME = "remove_orphan_files"
COMMITS, REWRITES_DATA, DELETES_FILES = False, False, True
OPTIONAL = ("prefix_mismatch_mode", "equal_schemes", "equal_authorities", "prefix_listing")
log = get_logger("orphans")


@dataclass(frozen=True)
class OrphanParams(Params):
    """What orphan removal may take. The 24 h floor is enforced here, once: no plan can carry a younger cut-off."""

    older_than_ms: int  # only files older than this instant ...
    now_ms: int  # ... judged at this instant
    location: str  # only files under the table location
    dry_run: bool
    max_files: int  # deletion budget: over either, nothing is deleted
    max_bytes: int
    prefix_mismatch_mode: str = "ERROR"
    equal_schemes: Mapping[str, str] = field(default_factory=dict)
    equal_authorities: Mapping[str, str] = field(default_factory=dict)
    max_concurrent_deletes: Optional[int] = None
    file_list: Optional[FileListSource] = None
    trash_prefix: Optional[str] = None  # move to <location>/<prefix>/ instead of deleting ...
    trash_keep_ms: int = 0  # ... and purge what was moved longer ago than this
    nested: Tuple[str, ...] = ()  # where other tables keep files inside this location: never candidates
    shared_with: Tuple[str, ...] = ()  # other tables at or above this location: nothing is removed
    check_against: Tuple[str, ...] = ()  # tables that once kept (or may keep) files above this location
    unknown: Tuple[str, ...] = ()  # tables whose reach cannot be read: nothing is removed
    versioned_deletes: bool = False  # on a versioned bucket, what the deletes left is removed too
    own: Tuple[str, ...] = ()  # where the table writes its files: only candidates under these are taken

    def __post_init__(self) -> None:
        age_hours = (self.now_ms - self.older_than_ms) / HOUR_MS
        if age_hours < ORPHAN_MIN_AGE_HOURS:
            raise SafetyError(
                "refusing to remove orphan files younger than %d h (asked for %.1f h): files that "
                "young may belong to a write still in progress" % (ORPHAN_MIN_AGE_HOURS, age_hours)
            )


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    o = policy.orphans
    if not o.enabled:
        return skip(NAME, "disabled by policy (orphans.enabled=false)")
    if not health.gc_enabled:
        return skip(NAME, "table has gc.enabled=false")
    now_ms = _now_ms() if now_ms is None else now_ms
    source = "the file list at %s" % o.file_list.path if o.file_list else "a listing of the table location"
    fate = "; moved to %s/ and kept %g days" % (o.trash.prefix, o.trash.keep_days) if o.trash.enabled else ""
    dry = "; dry run only" if o.dry_run else ""
    return Plan(
        action=NAME,
        run=True,
        reason="find files older than %g h in %s that no snapshot references, using %s; budget %d files / %s%s%s"
        % (o.older_than_hours, health.location, source, o.max_files, human_bytes(o.max_bytes), fate, dry),
        params=OrphanParams(
            older_than_ms=now_ms - int(o.older_than_hours * HOUR_MS),
            now_ms=now_ms,
            location=health.location,
            dry_run=o.dry_run,
            max_files=o.max_files,
            max_bytes=o.max_bytes,
            prefix_mismatch_mode=o.prefix_mismatch_mode,
            equal_schemes=dict(o.equal_schemes),
            equal_authorities=dict(o.equal_authorities),
            max_concurrent_deletes=o.max_concurrent_deletes,
            file_list=o.file_list,
            trash_prefix=o.trash.prefix if o.trash.enabled else None,
            trash_keep_ms=int(o.trash.keep_days * 24 * HOUR_MS),
            versioned_deletes=policy.storage.versioned_deletes,
            own=own_directories(health.location, health.properties),
        ),
    )


def with_neighbors(plan: Plan, table: str, reach: Reach, ignore: Sequence[str] = ()) -> Plan:
    """The plan knowing where the catalog's other tables keep files (reach.py): their prefixes inside this
    location are left out of the candidates; a table located at or above it (a shared location) makes the removal
    refuse; a table that once kept files at or above it (an old location, a data path) has the candidates checked
    against its references; a table whose reach cannot be read makes it refuse, unless `ignore` names it."""
    p = params_of(plan, OrphanParams)
    others = sorted((name, prefixes) for name, prefixes in reach.prefixes.items() if name != table)
    nested = nested_in(reach, table, p.location)
    shared = tuple(
        "%s (%s)" % (name, prefixes[0])
        for name, prefixes in others
        if same_location(prefixes[0], p.location) or within(p.location, prefixes[0])
    )
    check = tuple(
        name
        for name, prefixes in others
        if any(same_location(pre, p.location) or within(p.location, pre) for pre in prefixes[1:])
    )
    unknown = tuple(
        "%s (%s)" % (name, why)
        for name, why in sorted(reach.unknown.items())
        if name != table and not any(fnmatch.fnmatchcase(name, pattern) for pattern in ignore)
    )
    return dataclasses.replace(
        plan, params=dataclasses.replace(p, nested=nested, shared_with=shared, check_against=check, unknown=unknown)
    )


def _guarded(spark: Any, candidates: List[str], p: OrphanParams) -> Tuple[Dict[str, Any], int]:
    """({candidate: file status}, total bytes) once every guard passes: inside the location, within the budget."""
    outside = [c for c in candidates if not within(c, p.location)]
    if outside:
        raise SafetyError(
            "orphan candidates outside the table location %s (e.g. %s); nothing deleted" % (p.location, outside[0])
        )
    if len(candidates) > p.max_files:
        raise SafetyError(
            "%d orphan candidates exceed the budget of %d files; nothing deleted (raise "
            "orphans.max_files after checking the dry-run list)" % (len(candidates), p.max_files)
        )
    stats = stat_many(spark, candidates)
    total = sum(info.size for info in stats.values())
    if total > p.max_bytes:
        raise SafetyError(
            "orphan candidates hold %s, over the budget of %s; nothing deleted"
            % (human_bytes(total), human_bytes(p.max_bytes))
        )
    return stats, total


def _procedure_args(table: str, p: OrphanParams) -> Dict[str, Any]:
    """remove_orphan_files' arguments for the table's listing."""
    return {
        "table": table,
        "older_than": Timestamp(iso_utc(p.older_than_ms)),
        "location": p.location,
        "prefix_mismatch_mode": p.prefix_mismatch_mode,
        "equal_schemes": dict(p.equal_schemes) or None,
        "equal_authorities": dict(p.equal_authorities) or None,
        "max_concurrent_deletes": p.max_concurrent_deletes,
    }


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, OrphanParams)
    lists.refuse_near_others(table, p.location, p.shared_with, p.unknown)
    base = _procedure_args(table, p)
    views: List[str] = []
    try:
        excluded = p.nested + ((trash.trash_root(p.location, p.trash_prefix),) if p.trash_prefix else ())
        listed_from: Dict[str, Any] = {}
        if p.file_list is None and through_boto3(spark, p.location) is not None:
            base["prefix_listing"] = True  # no Hadoop filesystem for s3:// here: the table's FileIO lists
        if p.file_list is not None:
            view, listed_from = lists.register_file_list(
                spark, p.file_list, p.location, excluded, p.older_than_ms, p.now_ms
            )
            views.append(view)
            base["file_list_view"] = view
        jtable = None if p.dry_run else jvm_table(spark, catalog, table)
        before = current_metadata(jtable) if jtable is not None else None
        rows, listing = lists.list_location(spark, catalog, base, OPTIONAL)
        listed = sorted({r["orphan_file_location"] for r in rows})
        outside = [c for c in listed if not any(within(c, loc) for loc in excluded)]
        theirs_not, others = lists.not_other_tables(spark, catalog, outside, p.location, p.check_against)
        candidates, foreign = lists.own_candidates(theirs_not, p.own)
        others.update(foreign)
        stats, total = _guarded(spark, candidates, p)
        outputs = {
            "candidates": len(stats),
            "listed_not_found": len(candidates) - len(stats),  # a file list (a late inventory) names files gone
            "nested_table_files_skipped": len(listed) - len(outside),
            **others,
            **listed_from,
            **listing,
            "candidate_bytes": total,
            "candidate_sample": sorted(stats)[:20],
            "deleted_files": 0,
            "deleted_bytes": 0,
            "dry_run": bool(p.dry_run),
        }
        if stats and not p.dry_run and p.trash_prefix:
            outputs.update(
                trash.to_trash(spark, catalog, table, jtable, before, stats, p.location, p.trash_prefix, p.now_ms)
            )
        elif stats and not p.dry_run:
            outputs.update(_remove(spark, catalog, table, p, base, views, jtable, before, stats))
        purged = 0
        if p.trash_prefix:
            purged = trash.purge_into(outputs, spark, p.location, p.trash_prefix, p.now_ms, p.trash_keep_ms, p.dry_run)
        moved = int(outputs.get("deleted_files") or 0) + int(outputs.get("trashed_files") or 0) + purged
        outputs.update(after_deletes(p.location, p.versioned_deletes, moved, skip=p.nested))
        return outputs
    finally:
        for view in views:
            spark.catalog.dropTempView(view)


def _remove(
    spark: Any,
    catalog: str,
    table: str,
    p: OrphanParams,
    base: Dict[str, Any],
    views: List[str],
    jtable: Any,
    before: Optional[str],
    stats: Dict[str, Any],
) -> Dict[str, Any]:
    """Delete the checked candidates and verify. `views`: where a temporary view made here is recorded for the
    caller to drop."""
    if before is not None and current_metadata(jtable) == before:
        # No commit since the dry run: its check against this very metadata holds; one bulk delete.
        failed, how = delete_files(spark, jtable, sorted(stats), p.max_concurrent_deletes)
        unchanged = current_metadata(jtable) == before
        outputs = {"deleted_with": how + " (no commit since the dry run)", "delete_failures": failed}
        outputs.update(lists.verify_removal(spark, catalog, table, stats, sorted(stats), references_checked=unchanged))
        return outputs
    views.append(lists.candidate_view(spark, stats, p.location))
    run_args = dict(base, dry_run=False, file_list_view=views[-1], prefix_listing=None)  # the list, no listing
    checked = {normalize(path): path for path in stats}
    deleted = sorted(
        {
            checked.get(normalize(r["orphan_file_location"]), r["orphan_file_location"])
            for r in call(spark, catalog, "remove_orphan_files", run_args, optional=OPTIONAL)
        }
    )
    outputs = {"deleted_with": "remove_orphan_files on the checked list (a commit landed since the dry run)"}
    outputs.update(lists.verify_removal(spark, catalog, table, stats, deleted))
    return outputs


def summarize(outputs: Dict[str, Any]) -> str:
    if not outputs.get("candidates"):
        return "no orphan files found"
    if outputs.get("dry_run"):
        return "dry run: %d orphan file(s), %s, would be deleted" % (
            outputs["candidates"],
            human_bytes(outputs["candidate_bytes"]),
        )
    checked = (
        "verified"
        if outputs.get("verified")
        else "not verified: %d left behind" % ((outputs.get("left_behind") or {}).get("files", 0))
    )
    if "trash_batch" in outputs:
        moved = (outputs["trashed_files"], human_bytes(outputs["trashed_bytes"]), outputs["trash_batch"], checked)
        return "moved %d orphan file(s), %s, to %s; %s" % moved
    deleted = (outputs.get("deleted_files", 0), human_bytes(outputs.get("deleted_bytes", 0)), checked)
    return "deleted %d orphan file(s), %s; %s" % deleted
