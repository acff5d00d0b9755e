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
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.config.sections import ErasureTable
from lakehouse_ops.engine.history import record_run
from lakehouse_ops.engine.session import LazySession
from lakehouse_ops.erasure.subjects import all_version_tokens, found_in, reidentified, resolve_subjects
from lakehouse_ops.erasure.table import TableErasure
from lakehouse_ops.errors import ConfigError, LakehouseOpsError
from lakehouse_ops.units import iso_seconds

RECEIPT_VERSION = 1


def _client(config: Config) -> Tuple[Any, Any]:
    """(pseudonymization client, keyring when the keys are at hand), or (None, None) without pseudonymization."""
    if config.pseudonymization is None:
        return None, None
    from lakehouse_ops.pseudo.spark import InExecutorSettings, make_client

    settings = config.pseudonymization.settings()
    client = make_client(settings)
    # In-executor mode has the keys at hand: tokens of every key version can then be matched.
    return client, (client.cipher.keyring if isinstance(settings, InExecutorSettings) else None)


def _entries(config: Config, tables: Optional[Iterable[str]]) -> List[ErasureTable]:
    entries: List[ErasureTable] = list(config.section("erasure").tables)
    if tables:
        wanted = {config.table_name(t) for t in tables}
        known = {config.table_name(e.table) for e in entries}
        unknown = sorted(wanted - known)
        if unknown:
            raise ConfigError(
                "%s: not configured as holding subject data (erasure.tables: %s)"
                % (", ".join(unknown), ", ".join(sorted(known)))
            )
        entries = [e for e in entries if config.table_name(e.table) in wanted]
    return entries


def erase(
    config: Config,
    identifiers: Sequence[str] = (),
    pseudonyms: Sequence[str] = (),
    tables: Optional[Iterable[str]] = None,
    dry_run: bool = False,
    request_id: Optional[str] = None,
    spark: Any = None,
    session_factory: Optional[Callable[[], Any]] = None,
) -> Dict[str, Any]:
    """Erase the subjects from the configured tables (or `tables` among them); returns the receipt."""
    started = time.time()
    entries = _entries(config, tables)
    client, keyring = _client(config)
    given = list(pseudonyms or ())
    # Re-identified once: the plaintexts become subjects, and each given pseudonym is matched as it is.
    plains = reidentified(given, client)
    subjects = resolve_subjects(list(identifiers or ()) + plains, [], client)
    by_identifier = {s.identifier: s.index for s in subjects}
    given_tokens = {token: by_identifier[plain] for token, plain in zip(given, plains)}
    if keyring is not None:
        given_tokens.update(all_version_tokens(keyring, subjects))
    spark = LazySession(config, spark, session_factory).get()
    from lakehouse_ops.health import open_tables

    catalog_tables = open_tables(config.catalog)
    results: List[Dict[str, Any]] = []
    hits: Dict[str, Set[int]] = {}
    for entry in entries:
        name = config.table_name(entry.table)
        eraser = TableErasure(config, spark, catalog_tables, entry, name, subjects, client, given_tokens)
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
        "receipt_version": RECEIPT_VERSION,
        "kind": "erasure",
        "request_id": request_id,
        "dry_run": dry_run,
        "started_at": iso_seconds(started),
        "finished_at": iso_seconds(time.time()),
        "subjects": found_in(subjects, hits),
        "found": found_anywhere,
        "ok": ok,
        "verified": ok and not dry_run and all(r["verification"].get("verified") for r in results),
        "tables": results,
        "summary": _summary(results, found_anywhere, dry_run, ok),
    }
    record_run(lambda: spark, config, "erase", receipt, dry_run)
    return receipt


def _summary(results: List[Dict[str, Any]], found_anywhere: bool, dry_run: bool, ok: bool) -> str:
    if not ok:
        failed = [r["table"] for r in results if not r["ok"]]
        return "erasure NOT complete: %s (see each table's problems)" % ", ".join(failed)
    if not found_anywhere:
        return "the subjects appear in none of the %d table(s) checked, in no snapshot and no file" % len(results)
    if dry_run:
        return "dry run: the subjects were found; nothing was changed"
    rows = sum(r["rows_deleted"] for r in results)
    snaps = sum(len(r["snapshots_expired"]) for r in results)
    return (
        "erased %d row(s), expired %d snapshot(s); verified: no remaining snapshot and no file in the table "
        "locations holds the subjects" % (rows, snaps)
    )


def read_subjects(source: str) -> List[str]:
    """Subjects, one per line, from a local file, an s3:// object or '-' (standard input). Files keep subjects out
    of command lines, shell history and EMR step arguments."""
    from lakehouse_ops.erasure.subjects import read_subject_lines

    if source == "-":
        import sys

        return read_subject_lines(sys.stdin.read(), "standard input")
    from lakehouse_ops.aws.textio import read_text

    return read_subject_lines(read_text(source, "subjects file"), source)


def receipt_destination(config: Config, receipt: Dict[str, Any], explicit: Optional[str] = None) -> Optional[str]:
    """`explicit`, else a file named after the run under erasure.receipts, else None."""
    if explicit:
        return explicit
    base = config.erasure.receipts if config.erasure is not None else None
    if not base:
        return None
    stamp = receipt["started_at"].replace(":", "").replace("-", "")
    name = "erasure-%s%s%s.json" % (
        stamp,
        "-" if receipt["request_id"] else "",
        _safe_name(receipt["request_id"] or ""),
    )
    return base.rstrip("/") + "/" + name


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]


def run_request(
    config: Config,
    identifiers: Sequence[str] = (),
    identifiers_file: Optional[str] = None,
    pseudonyms: Sequence[str] = (),
    pseudonyms_file: Optional[str] = None,
    tables: Optional[Iterable[str]] = None,
    dry_run: bool = False,
    request_id: Optional[str] = None,
    receipt_path: Optional[str] = None,
    spark: Any = None,
    session_factory: Optional[Callable[[], Any]] = None,
) -> Dict[str, Any]:
    """Erase, then write the receipt (to `receipt_path` or the erasure.receipts location); returns the receipt."""
    from lakehouse_ops.aws.textio import write_json

    receipt = erase(
        config,
        list(identifiers) + (read_subjects(identifiers_file) if identifiers_file else []),
        list(pseudonyms) + (read_subjects(pseudonyms_file) if pseudonyms_file else []),
        tables=tables,
        dry_run=dry_run,
        request_id=request_id,
        spark=spark,
        session_factory=session_factory,
    )
    destination = receipt_destination(config, receipt, receipt_path)
    if destination:
        receipt["receipt_path"] = destination
        write_json(destination, receipt)
    return receipt
