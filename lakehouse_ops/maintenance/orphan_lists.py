"""The file lists orphan removal hands to Iceberg and checks against: an external listing cut to one table's
files, the checked candidates as a `file_list_view`, the candidates other tables may own, and paths spelled the
one way `paths.normalize` spells them (in SQL too); and what a removal did, checked on storage and against the
metadata."""

import re
import uuid
from typing import Any, Dict, List, Sequence, Tuple

from lakehouse_ops.aws.inventory import Manifest, current_sql, load_manifest
from lakehouse_ops.aws.s3 import read_bytes
from lakehouse_ops.config.policy import INVENTORY, FileListSource
from lakehouse_ops.engine.frames import frame
from lakehouse_ops.engine.fs import stat_many, table_roots
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.errors import SafetyError, VerificationError, first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.paths import glob_escape, normalize, within
from lakehouse_ops.sqltext import quote_string, table_ref
from lakehouse_ops.units import HOUR_MS, iso_utc

log = get_logger("orphans")


def normalized_sql(column: str) -> str:
    """SQL: the path in `column` spelled as `paths.normalize` spells it (s3a/s3n as s3, file: forms bare,
    repeated slashes as one, `.` and `..` segments resolved, `..` up to eight deep; never above the bucket)."""
    sql = "regexp_replace(regexp_replace(%s, '^s3[an]://', 's3://'), '^file:/+', '/')" % column
    sql = r"regexp_replace(regexp_replace(%s, '(?<!:)/{2,}', '/'), '/\\.(?=/|$)', '')" % sql
    for _ in range(8):  # one `<segment>/..` each pass, leftmost first
        sql = r"regexp_replace(%s, '(?<!:/)/(?!\\.\\.(/|$))[^/]+/\\.\\.(?=/|$)', '')" % sql
    # `..` at the top stays at the top (the bucket, or /).
    return r"regexp_replace(regexp_replace(%s, '^(s3://[^/]+)(/\\.\\.)+(?=/|$)', '$1'), '^(/\\.\\.)+(?=/|$)', '')" % sql


def list_location(
    spark: Any, catalog: str, args: Dict[str, Any], optional: Sequence[str]
) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """The dry run of `remove_orphan_files` with `args`: its rows, and how the location was listed when that was
    not as asked. A directory deleted while Hadoop walks the location (another job's expiry emptied it) fails
    the walk: the location is listed once more by prefix through the table's FileIO, which sees files only."""
    try:
        return call(spark, catalog, "remove_orphan_files", dict(args, dry_run=True), optional=optional), {}
    except Exception as exc:
        if "FileNotFoundException" not in str(exc) or args.get("file_list_view") or args.get("prefix_listing"):
            raise
        log.warning(
            "a directory vanished while the location was walked; listing it by prefix",
            extra={"error": first_line(exc)[:300]},
        )
    rows = call(spark, catalog, "remove_orphan_files", dict(args, dry_run=True, prefix_listing=True), optional=optional)
    return rows, {"listing": "by prefix through the table's FileIO: a directory vanished while the walk listed it"}


def under_sql(column: str, location: str) -> str:
    """SQL: `column` (a path) lies under the directory `location`."""
    base = normalize(location).rstrip("/") + "/"
    return "substring(%s, 1, %d) = %s" % (normalized_sql(column), len(base), quote_string(base))


def register_file_list(
    spark: Any, source: FileListSource, location: str, nested: Sequence[str], older_than_ms: int, now_ms: int
) -> Tuple[str, Dict[str, Any]]:
    """The external listing, cut to the files under the table location and outside the tables nested in it (a
    sibling table sharing a name prefix, or a nested one, never contributes a candidate), its paths spelled as the
    table location spells them (`file:/...` or `s3a://` lists match a location spelled otherwise). An S3 Inventory
    report older than the orphan age is refused: it no longer describes the location."""
    found: Dict[str, Any] = {}
    if source.format == INVENTORY:
        manifest = load_manifest(source.path, _read_bytes)
        age, max_age_hours = manifest.age_hours(now_ms), (now_ms - older_than_ms) / HOUR_MS
        if age is None or manifest.created_ms is None:
            raise SafetyError(
                "the S3 Inventory report %s has no creationTimestamp: how old it is cannot be told; nothing deleted"
                % source.path
            )
        if age < -1:
            raise SafetyError(
                "the S3 Inventory report %s is dated %.1f h in the future: this run's clock or the report is wrong; "
                "nothing deleted" % (source.path, -age)
            )
        if age > max_age_hours:
            raise SafetyError(
                "the S3 Inventory report %s is %.1f h old, older than the orphan age of %g h: it no longer describes "
                "%s; nothing deleted (point orphans.file_list at a newer report)"
                % (source.path, age, max_age_hours, location)
            )
        df = inventory_frame(spark, manifest)
        found = {"file_list_created": iso_utc(manifest.created_ms), "file_list_age_hours": round(age, 1)}
    else:
        reader = spark.read.format(source.format)
        if source.format == "csv":
            reader = reader.option("header", "true")
        df = reader.load(source.path).selectExpr(
            "CAST(`%s` AS STRING) AS file_path" % source.file_path_column,
            "CAST(`%s` AS TIMESTAMP) AS last_modified" % source.last_modified_column,
        )
    df = df.where(under_sql("file_path", location)).where("NOT (%s)" % tidied_sql("file_path"))
    for inner in nested:
        df = df.where("NOT (%s)" % under_sql("file_path", inner))
    return temp_view(df.selectExpr("%s AS file_path" % as_location_sql("file_path", location), "last_modified")), found


def _read_bytes(uri: str) -> bytes:
    if uri.startswith(("s3://", "s3a://", "s3n://")):
        return read_bytes(uri)
    with open(normalize(uri), "rb") as handle:
        return handle.read()


def inventory_frame(spark: Any, manifest: Manifest) -> Any:
    """The report's current objects as (file_path, last_modified), read by Spark from its data files."""
    paths = [glob_escape(uri) for uri in manifest.data_uris]
    if not paths:
        return frame(spark, {"file_path": [], "last_modified": []}, "file_path string, last_modified timestamp")
    if manifest.file_format == "CSV":
        schema = ", ".join("`%s` STRING" % column for column in manifest.columns)
        df = spark.read.schema(schema).csv(paths)
    else:
        df = spark.read.format(manifest.file_format.lower()).load(paths)
    key = "url_decode(key)" if manifest.keys_encoded else "key"
    current = current_sql(set(df.columns))
    return df.where(current).selectExpr(
        "concat('s3://', bucket, '/', %s) AS file_path" % key, "CAST(last_modified_date AS TIMESTAMP) AS last_modified"
    )


def as_location_sql(column: str, location: str) -> str:
    """SQL: the path in `column` (under `location`) spelled with the table location's own prefix."""
    base = normalize(location).rstrip("/") + "/"
    return "concat(%s, substring(%s, %d))" % (
        quote_string(location.rstrip("/") + "/"),
        normalized_sql(column),
        len(base) + 1,
    )


def temp_view(df: Any) -> str:
    name = "lakehouse_ops_files_%s" % uuid.uuid4().hex[:12]
    df.createOrReplaceTempView(name)
    return name


def as_location_path(path: str, location: str) -> str:
    """`path` spelled with the table location's own prefix: Iceberg keeps only list entries under `location`."""
    return location.rstrip("/") + normalize(path)[len(normalize(location).rstrip("/")) :]


def candidate_view(spark: Any, stats: Dict[str, Any], location: str) -> str:
    paths = list(stats)
    columns = {"file_path": [as_location_path(p, location) for p in paths], "ms": [stats[p][1] for p in paths]}
    df = frame(spark, columns, "file_path string, ms long")
    return temp_view(df.selectExpr("file_path", "timestamp_millis(ms) AS last_modified"))


def referenced(spark: Any, catalog: str, table: str, paths: List[str]) -> List[str]:
    """Those of `paths` (normalized) that any snapshot of the table still references (data, delete or manifest
    files): a join in Spark, so the driver never holds every file the table ever referenced."""
    if not paths:
        return []
    ref = table_ref(catalog, table)
    wanted = frame(spark, {"p": sorted({normalize(p) for p in paths})}, "p string")
    live = spark.sql(
        "SELECT %s AS p FROM %s.all_files UNION ALL SELECT %s AS p FROM %s.all_manifests"
        % (normalized_sql("file_path"), ref, normalized_sql("path"), ref)
    )
    return sorted({row.p for row in live.join(wanted, "p", "left_semi").collect()})


def ancestors(path: str, location: str) -> List[str]:
    """The directories between `location` (left out) and the file at `path`."""
    base = location.rstrip("/")
    parts = normalize(path)[len(normalize(base)) :].strip("/").split("/")[:-1]
    return [base + "/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def not_other_tables(
    spark: Any, catalog: str, candidates: List[str], location: str, check_against: Sequence[str]
) -> Tuple[List[str], Dict[str, Any]]:
    """The candidates no other table can own: none under a directory holding another table's metadata (any
    catalog's, registered or not: a table nested in this location that no catalog listing shows), and none that a
    table which once kept files at or above this location references."""
    roots = table_roots(spark, [d for c in candidates for d in ancestors(c, location)])
    kept = [c for c in candidates if not any(within(c, root) for root in roots)]
    referenced_elsewhere: List[str] = []
    for other in check_against:
        try:
            referenced_elsewhere += referenced(spark, catalog, other, kept)
        except Exception as exc:
            raise SafetyError(
                "%s once kept files at or above %s, and its references cannot be read (%s); nothing deleted"
                % (other, location, first_line(exc))
            ) from None
    elsewhere = set(referenced_elsewhere)
    kept = [c for c in kept if normalize(c) not in elsewhere]
    found: Dict[str, Any] = {"other_tables_files_skipped": len(candidates) - len(kept)}
    if roots:
        found["tables_inside_location"] = roots  # tables no catalog listing showed
        log.warning("orphan removal found other tables inside the location", extra={"tables": roots})
    return kept, found


def refuse_near_others(table: str, location: str, shared_with: Sequence[str], unknown: Sequence[str]) -> None:
    """Nothing is removed where another table's files could look like this table's orphans."""
    if shared_with:
        raise SafetyError(
            "%s shares its location %s with %s: their files would look like orphans of this table; nothing "
            "deleted" % (table, location, ", ".join(shared_with))
        )
    if unknown:
        raise SafetyError(
            "cannot tell where %s keep their files: they could reference files in %s; nothing deleted (make them "
            "readable to this run, or name them in orphans.ignore_tables if they never keep files here)"
            % (", ".join(unknown), location)
        )


# `?` and `#` end a key for S3FileIO; `//`, `.` and `..` segments are tidied away by the path checks, moves and
# restores (paths.normalize), which would then reach another key: such a file is never taken.
_TIDIED = r"//|(?:^|/)\.{1,2}(?=/|$)"
_UNADDRESSABLE = re.compile(r"[?#]|" + _TIDIED)


def tidied_sql(column: str) -> str:
    """SQL: whether the path in `column` holds a `//`, `.` or `..` segment, checked on the path as listed, before
    the list's paths are spelled as the location spells them (which tidies such segments into another key; `?` and
    `#` are left to `own_candidates`, which names them)."""
    key = "regexp_replace(%s, %s, '')" % (column, quote_string(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*/|^file:/+|^/+"))
    return "%s RLIKE %s" % (key, quote_string(_TIDIED))


def _unaddressable(path: str) -> bool:
    key = path.split("://", 1)[1].split("/", 1)[-1] if "://" in path else path  # after the bucket or host
    return bool(_UNADDRESSABLE.search(key))


def own_candidates(candidates: List[str], own: Sequence[str]) -> Tuple[List[str], Dict[str, Any]]:
    """The candidates the table itself could have written: under its own data or metadata directories, and with a
    path its FileIO addresses as it is spelled (S3FileIO reads `?` and `#` as the end of a key: deleting such a
    file would delete another; a `//`, `.` or `..` segment is tidied into another key by the checks and moves).
    The rest are left alone and named: files in other directories of the location were put there by someone
    else, a table that once wrote there perhaps, and nothing can tell whose they are."""
    kept = [c for c in candidates if any(within(c, d) for d in own) and not _unaddressable(c)]
    left = sorted(set(candidates) - set(kept))
    if not left:
        return kept, {}
    log.warning("orphan candidates outside the table's own directories left alone", extra={"files": len(left)})
    return kept, {
        "foreign_files_left": {
            "files": len(left),
            "sample": left[:20],
            "reason": "not under the table's own data or metadata directories (%s), or not addressable as spelled "
            "(`?`, `#`, `//`, `.` or `..` in the key): whose they are cannot be told, so they are left; remove them "
            "by hand once checked" % ", ".join(own),
        }
    }


def verify_removal(
    spark: Any, catalog: str, table: str, stats: Dict[str, Any], deleted: List[str], references_checked: bool = False
) -> Dict[str, Any]:
    """What the removal did, checked on storage and against the metadata: raises if anything outside the checked
    candidates was deleted or a deleted file is referenced; names what is still on storage (`left_behind`).
    `references_checked`: no commit landed since the dry run checked the candidates against the metadata (the
    metadata file is the same), so they are not read again."""
    outputs: Dict[str, Any] = {}
    unexpected = [d for d in deleted if d not in stats]
    # One scan of the table's references for every checked candidate: a deleted one must not be among them, and
    # one still there may be (a writer committed it meanwhile: rightly kept, and no orphan).
    kept = (
        set()
        if references_checked and not unexpected
        else set(referenced(spark, catalog, table, list(stats) + unexpected))
    )
    still_referenced = [d for d in deleted if normalize(d) in kept]
    if unexpected or still_referenced:
        raise VerificationError(
            "orphan removal on %s did not verify: %d deleted outside the checked list, %d still referenced"
            % (table, len(unexpected), len(still_referenced))
        )
    # Iceberg logs a failed delete and goes on: what is still on storage was not removed.
    still_there = sorted(stat_many(spark, [d for d in stats if normalize(d) not in kept]))
    left = set(still_there)
    gone = [d for d in stats if d not in left and normalize(d) not in kept]
    outputs.update(deleted_files=len(gone), deleted_bytes=sum(stats[d].size for d in gone), verified=not still_there)
    if still_there:
        outputs["left_behind"] = {
            "files": len(still_there),
            "bytes": sum(stats[d].size for d in still_there),
            "sample": still_there[:20],
            "reason": "%d of %d orphan file(s) are still on storage after their delete (storage errors or "
            "permissions; see the Spark log); the next run takes them" % (len(still_there), len(stats)),
        }
    return outputs
