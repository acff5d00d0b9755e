"""Other automation on a table that overlaps what maintenance does, where AWS's APIs tell:

- AWS Glue table optimizers (compaction, snapshot retention, orphan file deletion) on a Glue catalog's table
  (`BatchGetTableOptimizer`);
- S3 lifecycle rules on the bucket that cover the table's location and expire current objects (they delete
  files, live ones too: orphan removal is left to them), or move them to an archive storage class (GLACIER,
  DEEP_ARCHIVE: reads fail until restored; a warning only, since a transition deletes nothing).

A finding that deletes what a maintenance action would names that action; the plan leaves it to the other
automation unless the policy says `external_automation: ignore`. Warnings overlap no action. An API that cannot
be asked (no permission, not offered by the endpoint) is reported as unknown, never as "none". S3 Tables
maintenance is not visible through these APIs (their tables live in table buckets lakehouse-ops does not manage).
"""

import time
from typing import Any, Dict, List, Optional, Tuple

from lakehouse_ops.aws.clients import describe_failure
from lakehouse_ops.logs import get_logger

log = get_logger("health.automation")
# Glue optimizer type -> the maintenance action it does.
GLUE_OPTIMIZERS = {
    "compaction": "compaction",
    "retention": "expire_snapshots",
    "orphan_file_deletion": "remove_orphan_files",
}
ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
LIFECYCLE_TTL_S = 300  # a bucket's lifecycle configuration is asked once per five minutes per process
_lifecycles: Dict[str, Tuple[float, Any]] = {}

Findings = Dict[str, str]  # what -> description (or "unknown: why")


def _split(location: str) -> Optional[Tuple[str, str]]:
    for scheme in ("s3://", "s3a://", "s3n://"):
        if location.startswith(scheme):
            bucket, _, key = location[len(scheme) :].partition("/")
            return bucket, key.rstrip("/") + "/"
    return None


def _rule_prefix(rule: Dict[str, Any]) -> str:
    flt = rule.get("Filter") or {}
    prefix = flt.get("Prefix")
    if prefix is None:
        prefix = (flt.get("And") or {}).get("Prefix")
    if prefix is None:
        prefix = rule.get("Prefix", "")
    return str(prefix or "")


def lifecycle_findings(rules: List[Dict[str, Any]], key_prefix: str) -> List[Tuple[str, str, Optional[str]]]:
    """(what, description, overlapped action or None for a warning) for enabled rules that reach the table's
    objects: their prefix and the table's overlap (one contains the other)."""
    out: List[Tuple[str, str, Optional[str]]] = []
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        prefix = _rule_prefix(rule)
        if not (key_prefix.startswith(prefix) or prefix.startswith(key_prefix)):
            continue
        name = "s3-lifecycle:%s" % (rule.get("ID") or prefix or "whole bucket")
        expiration = rule.get("Expiration") or {}
        if "Days" in expiration or "Date" in expiration:
            when = "after %s days" % expiration["Days"] if "Days" in expiration else "on %s" % expiration["Date"]
            out.append(
                (
                    name,
                    "expires current objects under '%s' %s: live data and metadata files" % (prefix, when),
                    "remove_orphan_files",
                )
            )
        for transition in rule.get("Transitions") or []:
            if transition.get("StorageClass") in ARCHIVE_CLASSES:
                out.append(
                    (
                        name,
                        "moves objects under '%s' to %s: reads fail until restored (a warning: it deletes nothing)"
                        % (prefix, transition["StorageClass"]),
                        None,
                    )
                )
    return out


def versioning_finding(s3: Any, bucket: str, key_prefix: str, rules: List[Dict[str, Any]]) -> Optional[str]:
    """A warning for a table on a versioned (or replicated) bucket: deleted files keep their storage as noncurrent
    versions unless a NoncurrentVersionExpiration rule reaches the table (or storage.versioned_deletes is on)."""
    from lakehouse_ops.aws.versions import bucket_copies

    copies = bucket_copies(s3, bucket)
    if not copies.versioned:
        return None
    expiring = [
        rule
        for rule in rules
        if rule.get("Status") == "Enabled"
        and rule.get("NoncurrentVersionExpiration")
        and key_prefix.startswith(_rule_prefix(rule))
    ]
    replicas = "; replicated to %s" % ", ".join(copies.replicas) if copies.replicas else ""
    if expiring:
        days = expiring[0]["NoncurrentVersionExpiration"].get("NoncurrentDays")
        return "versioned bucket%s: deleted files' noncurrent versions expire after %s days (rule %s)" % (
            replicas,
            days,
            expiring[0].get("ID") or _rule_prefix(expiring[0]) or "whole bucket",
        )
    return (
        "versioned bucket%s: files expiry and orphan removal delete keep their storage as noncurrent versions (no "
        "NoncurrentVersionExpiration rule reaches the table; or set storage.versioned_deletes: true)" % replicas
    )


def _lifecycle(s3: Any, bucket: str) -> Any:
    cached = _lifecycles.get(bucket)
    if cached is not None and time.time() - cached[0] < LIFECYCLE_TTL_S:
        return cached[1]
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        rules = [] if code == "NoSuchLifecycleConfiguration" else exc
    _lifecycles[bucket] = (time.time(), rules)
    return rules


def glue_findings(glue: Any, table: str, catalog_id: Optional[str]) -> List[Tuple[str, str, Optional[str]]]:
    database, _, name = table.rpartition(".")
    entries = [dict(DatabaseName=database, TableName=name, Type=kind) for kind in GLUE_OPTIMIZERS]
    if catalog_id:
        for entry in entries:
            entry["CatalogId"] = catalog_id
    answer = glue.batch_get_table_optimizer(Entries=entries)
    out: List[Tuple[str, str, Optional[str]]] = []
    for item in answer.get("TableOptimizers", []):
        optimizer = item.get("TableOptimizer") or {}
        kind = optimizer.get("type") or optimizer.get("Type")
        enabled = (optimizer.get("configuration") or {}).get("enabled")
        if kind in GLUE_OPTIMIZERS and enabled:
            out.append(("glue-optimizer:%s" % kind, "AWS Glue's %s optimizer is enabled" % kind, GLUE_OPTIMIZERS[kind]))
    return out


def _unknown(exc: BaseException) -> str:
    return "unknown: %s" % (describe_failure(exc) or str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]


def detect(catalog: Any, table: str, location: str) -> Tuple[Findings, List[str]]:
    """({what: description}, [maintenance actions overlapped]) for `table` at `location` in `catalog` (a
    CatalogConfig). Nothing is asked for a table outside S3 in a catalog other than Glue."""
    from lakehouse_ops.aws.clients import client

    findings: Findings = {}
    overlaps: List[str] = []
    found: List[Tuple[str, str, Optional[str]]] = []
    if catalog.type == "glue":
        try:
            found += glue_findings(client("glue"), table, catalog.properties.get("glue.id"))
        except Exception as exc:
            findings["glue-optimizers"] = _unknown(exc)
    where = _split(location)
    if where is not None:
        rules = _lifecycle(client("s3"), where[0])
        if isinstance(rules, Exception):
            findings["s3-lifecycle"] = _unknown(rules)
        else:
            found += lifecycle_findings(rules, where[1])
        try:
            versioned = versioning_finding(
                client("s3"), where[0], where[1], [] if isinstance(rules, Exception) else rules
            )
            if versioned:
                findings["s3-versioning"] = versioned
        except Exception as exc:
            findings["s3-versioning"] = _unknown(exc)
    for what, description, action in found:  # one rule may both expire and archive: both are said
        findings[what] = "%s; %s" % (findings[what], description) if what in findings else description
        if action is not None and action not in overlaps:
            overlaps.append(action)
    if found:
        log.warning("other automation overlaps maintenance", extra={"table": table, "findings": findings})
    return findings, overlaps
