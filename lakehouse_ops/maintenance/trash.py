"""Recoverable orphan removal: orphans are moved under `<table location>/<prefix>/<moved at>/<their path in the
location>` instead of deleted, batches older than the policy's `keep_days` are purged, and
`lakehouse-ops orphans restore TABLE --since ...` moves a window of batches back where they were.

The prefix is a hidden directory (its name starts with '.'): Iceberg's listing of the table location skips it, an
external file list is cut to leave it out, so what is in the trash is never an orphan candidate again. A batch is
named by the instant it was moved (UTC, to the millisecond), which is all purge and restore go by."""

import calendar
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from lakehouse_ops.aws.clients import describe_failure
from lakehouse_ops.engine.fs import (
    LISTING_THREADS,
    FileInfo,
    delete_tree,
    list_directories,
    list_files,
    move,
    stat_many,
)
from lakehouse_ops.engine.tables import current_metadata
from lakehouse_ops.errors import SafetyError, first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance.orphan_lists import referenced
from lakehouse_ops.paths import normalize
from lakehouse_ops.retry import each_then_again

log = get_logger("trash")
STAMP = "%Y%m%dT%H%M%S"  # + milliseconds + "Z": 20261124T054605123Z
SAMPLE = 20


def batch_name(now_ms: int) -> str:
    return time.strftime(STAMP, time.gmtime(now_ms // 1000)) + "%03dZ" % (now_ms % 1000)


def batch_time_ms(name: str) -> Optional[int]:
    """The instant a batch directory's name stands for, or None for a name that is not a batch."""
    if len(name) != 19 or not name.endswith("Z") or not name[15:18].isdigit():
        return None
    try:
        seconds = calendar.timegm(time.strptime(name[:15], STAMP))
    except ValueError:
        return None
    return seconds * 1000 + int(name[15:18])


def trash_root(location: str, prefix: str) -> str:
    return "%s/%s" % (location.rstrip("/"), prefix)


def relative_to(path: str, location: str) -> str:
    """`path`'s place inside the directory `location` (both spelled any way `paths.normalize` accepts)."""
    base = normalize(location).rstrip("/") + "/"
    spelled = normalize(path)
    if not spelled.startswith(base):
        raise SafetyError("%s is not inside %s" % (path, location))
    return spelled[len(base) :]


def _batches(names: List[str]) -> Dict[str, int]:
    """{batch name: moved at} of the names that are batches."""
    times = {name: batch_time_ms(name) for name in names}
    return {name: at for name, at in times.items() if at is not None}


def due(names: List[str], now_ms: int, keep_ms: int) -> List[str]:
    """The batches moved more than `keep_ms` before `now_ms`, oldest first."""
    return sorted(name for name, at in _batches(names).items() if now_ms - at > keep_ms)


def since(names: List[str], since_ms: float) -> List[str]:
    """The batches moved at or after `since_ms`, oldest first."""
    return sorted(name for name, at in _batches(names).items() if at >= since_ms)


def _move_all(spark: Any, pairs: List[Tuple[str, str]]) -> Tuple[List[bool], List[str]]:
    """(moved or not, per pair; the distinct reasons moves failed for, as AWS names them where it does)."""
    reasons: List[str] = []

    def one(pair: Tuple[str, str]) -> bool:
        try:
            return move(spark, pair[0], pair[1])
        except Exception as exc:  # permissions, throttling: reported below
            reason = describe_failure(exc) or first_line(exc)
            log.warning("a move failed", extra={"error": reason[:200]})
            if reason not in reasons and len(reasons) < 3:
                reasons.append(reason)
            return False

    return each_then_again(one, pairs, LISTING_THREADS), reasons


def _why(reasons: List[str]) -> str:
    return "; ".join(reasons) if reasons else "see the log"


def move_to_trash(spark: Any, sizes: Mapping[str, int], location: str, prefix: str, now_ms: int) -> Dict[str, Any]:
    """Move the checked orphans (path -> size) into one new batch and verify: each is in the trash with its size
    and gone from where it was. What did not move is named (`left_behind`); nothing is deleted here."""
    batch = "%s/%s" % (trash_root(location, prefix), batch_name(now_ms))
    pairs = [(path, "%s/%s" % (batch, relative_to(path, location))) for path in sorted(sizes)]
    _, reasons = _move_all(spark, pairs)
    arrived = stat_many(spark, [target for _, target in pairs])
    still = stat_many(spark, [source for source, _ in pairs])
    moved = [s for s, t in pairs if t in arrived and arrived[t].size == sizes[s] and s not in still]
    gone = [s for s, t in pairs if t not in arrived and s not in still]  # deleted by someone else meanwhile
    outputs: Dict[str, Any] = {
        "trashed_files": len(moved),
        "trashed_bytes": sum(sizes[s] for s in moved),
        "trash_batch": batch,
        "verified": len(moved) + len(gone) == len(pairs),
    }
    if gone:
        outputs["gone_meanwhile"] = {"files": len(gone), "sample": gone[:SAMPLE]}
    left = [s for s, _ in pairs if s in still]
    if left:
        both = [s for s, t in pairs if s in still and t in arrived]
        outputs["left_behind"] = {
            "files": len(left),
            "sample": left[:SAMPLE],
            "reason": "%d of %d orphan file(s) did not move to the trash (%s); they stay where they were and the "
            "next run takes them" % (len(left), len(pairs), _why(reasons)),
        }
        if both:  # copied, the source not deleted, the copy not taken back: the trash holds a second copy
            outputs["left_behind"]["also_in_the_trash"] = len(both)
    return outputs


def to_trash(
    spark: Any,
    catalog: str,
    table: str,
    jtable: Any,
    before: Optional[str],
    stats: Mapping[str, FileInfo],
    location: str,
    prefix: str,
    now_ms: int,
) -> Dict[str, Any]:
    """Orphan removal's last step with the trash on. The candidates were checked against the metadata `before`;
    if a commit landed since, what it references now stays. After the move, a commit that landed meanwhile and
    references a moved file gets it back at once (`moved_back`)."""
    unchanged = jtable is not None and before is not None and current_metadata(jtable) == before
    kept = set() if unchanged else set(referenced(spark, catalog, table, list(stats)))
    chosen = {path: info.size for path, info in stats.items() if normalize(path) not in kept}
    outputs = move_to_trash(spark, chosen, location, prefix, now_ms)
    outputs.update(deleted_files=0, deleted_bytes=0, kept_referenced=len(stats) - len(chosen))
    if jtable is None or current_metadata(jtable) != before:
        batch = outputs["trash_batch"]
        now_referenced = set(referenced(spark, catalog, table, list(chosen)))  # one join for them all
        back = [p for p in chosen if normalize(p) in now_referenced]
        returned = _move_all(spark, [("%s/%s" % (batch, relative_to(p, location)), p) for p in back])
        if not all(returned):
            raise SafetyError(
                "%d file(s) moved to the trash %s were committed meanwhile and could not be moved back: restore "
                "them with `lakehouse-ops orphans restore`" % (returned.count(False), batch)
            )
        outputs.update(moved_back=len(back), trashed_files=outputs["trashed_files"] - len(back))
    return outputs


def purge(spark: Any, location: str, prefix: str, now_ms: int, keep_ms: int, dry_run: bool) -> Dict[str, Any]:
    """Delete the trash batches older than `keep_ms` (or, in a dry run, name them)."""
    root = trash_root(location, prefix)
    names = due(list_directories(spark, root), now_ms, keep_ms)
    files, left = 0, []
    for name in names:
        count = len(list_files(spark, "%s/%s" % (root, name)))
        if not dry_run and not delete_tree(spark, "%s/%s" % (root, name)):
            left.append(name)  # named below; the next run purges it again
        else:
            files += count
    out: Dict[str, Any] = {"purged_batches": [n for n in names if n not in left], "purged_files": files}
    if left:
        log.warning("trash batches not purged", extra={"batches": left})
        out["not_purged"] = left
        out["reason"] = "%d trash batch(es) could not be deleted whole (see the log); the next run purges them" % len(
            left
        )
    out["dry_run"] = dry_run
    return out


def purge_into(
    outputs: Dict[str, Any], spark: Any, location: str, prefix: str, now_ms: int, keep_ms: int, dry_run: bool
) -> int:
    """Orphan removal's purge of its due trash batches, into its outputs (`trash_purge`; a batch not purged is
    `left_behind`): the number of files deleted, whose versions a versioned bucket keeps like any delete's."""
    purged = purge(spark, location, prefix, now_ms, keep_ms, dry_run)
    outputs["trash_purge"] = purged
    if purged.get("not_purged") and "left_behind" not in outputs:
        outputs["left_behind"] = {"files": 0, "sample": purged["not_purged"], "reason": purged["reason"]}
    return 0 if dry_run else int(purged["purged_files"])


def restore(spark: Any, location: str, prefix: str, since_ms: float, dry_run: bool) -> Dict[str, Any]:
    """Move the files of every batch moved at or after `since_ms` back to their place in the table location.
    A file whose place is taken again is left in the trash and named (`conflicts`); a batch is removed once
    empty."""
    root = trash_root(location, prefix)
    names = since(list_directories(spark, root), since_ms)
    pairs: List[Tuple[str, str]] = []
    for name in names:
        batch = "%s/%s" % (root, name)
        pairs += [
            (uri, "%s/%s" % (location.rstrip("/"), relative_to(uri, batch))) for uri, _, _ in list_files(spark, batch)
        ]
    report: Dict[str, Any] = {
        "ok": True,
        "table_location": location,
        "batches": names,
        "files": len(pairs),
        "dry_run": dry_run,
    }
    if dry_run:
        report["sample"] = [target for _, target in pairs[:SAMPLE]]
        return report
    results, reasons = _move_all(spark, pairs)
    conflicts = [target for (_, target), ok in zip(pairs, results) if not ok]
    for name in names:
        if not list_files(spark, "%s/%s" % (root, name)):
            delete_tree(spark, "%s/%s" % (root, name))
    report.update(ok=not conflicts, restored_files=len(pairs) - len(conflicts), conflicts=len(conflicts))
    if conflicts:
        report["conflict_sample"] = conflicts[:SAMPLE]
        report["reason"] = "%d file(s) stayed in the trash: their place is taken again or the move failed (%s)" % (
            len(conflicts),
            _why(reasons),
        )
    return report
