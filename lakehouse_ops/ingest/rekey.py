"""Upserts keyed by a deterministically pseudonymized column across a key rotation.

A deterministic token changes with the key version: after a rotation a key's new token no longer equals the token
its row holds, and a merge on it would make a second row. So before a batch is merged:
- its tokens of the key column must be of one key version (a rotation met the batch mid-way: it is read again);
- the target records, in a table property (`lakehouse-ops.key-version.<column>`), the newest key version its
  tokens were brought to; a batch under an older version comes from a worker whose keys are out of date: its keys
  are read again and the batch is read again;
- a batch under a newer version first records it (so other workers see it at once), then re-keys the target's
  tokens of other versions (re-identified and pseudonymized again within one executor function), so every row of a
  key is found under the batch's token. A worker checks the target again every RECHECK_S for tokens a stale worker
  may still have written in between.
"""

import time
import uuid
from typing import Any, Dict, Sequence, Tuple

from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest.upsert import quoted
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import quote_string

log = get_logger("ingest.rekey")
KEY_VERSION = "lakehouse-ops.key-version.%s"
RECHECK_S = 300.0
Known = Dict[str, Tuple[int, float]]  # column -> (key version the target was brought to, when)


class MixedVersions(IngestError):
    """A batch's tokens of one key column are of several key versions (a rotation met it mid-way)."""


class StaleKeys(MixedVersions):
    """The batch's tokens are of an older key version than the target's: this worker's keys are out of date."""


def _recorded(spark: Any, target_ref: str, column: str) -> Any:
    spark.sql("REFRESH TABLE %s" % target_ref)
    props = {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES %s" % target_ref).collect()}
    value = props.get(KEY_VERSION % column)
    return int(value) if value is not None and str(value).isdigit() else None


def _batch_version(source: Any, column: str) -> Any:
    from pyspark.sql import functions as F

    from lakehouse_ops.pseudo.spark import token_version

    key = F.col(quoted(column))
    found = source.where(key.isNotNull()).select(token_version(key)).distinct().collect()
    versions = sorted(int(r[0]) for r in found if r[0] is not None)
    if len(versions) > 1:
        raise MixedVersions("the batch's %s tokens are of key versions %s" % (column, versions))
    return versions[0] if versions else None


def align_key_versions(
    spark: Any, target_ref: str, source: Any, columns: Sequence[str], settings: Any, known: Known
) -> Dict[str, Any]:
    """Bring the target's tokens of `columns` to the key version of the batch's (`source`, held) before a merge
    (see the module's text). Returns what was re-keyed."""
    done: Dict[str, Any] = {}
    for column in columns:
        version = _batch_version(source, column)
        if version is None:
            continue
        recorded = _recorded(spark, target_ref, column)
        if recorded is not None and recorded > version:
            raise StaleKeys(
                "the batch's %s tokens are of key version %d, the table's of %d: this worker's keys are out of date"
                % (column, version, recorded)
            )
        fresh = known.get(column)
        if recorded == version and fresh is not None and fresh[0] == version and time.time() - fresh[1] < RECHECK_S:
            continue
        if recorded != version:
            spark.sql(
                "ALTER TABLE %s SET TBLPROPERTIES (%s = '%d')"
                % (target_ref, quote_string(KEY_VERSION % column), version)
            )
        tokens = _rekey(spark, target_ref, column, settings, version)
        known[column] = (version, time.time())
        if tokens or recorded != version:
            done[column] = {"key_version": version, "rekeyed_tokens": tokens}
    return done


def _rekey(spark: Any, target_ref: str, column: str, settings: Any, version: int) -> int:
    """Re-key the target's tokens of `column` under other key versions to `version`; how many tokens."""
    from pyspark.sql import functions as F

    from lakehouse_ops.pseudo.spark import rekey, token_version

    key = F.col(quoted(column))
    older = spark.table(target_ref).where(key.isNotNull() & (token_version(key) != version))
    if hasattr(settings, "key_version"):
        settings = settings.model_copy(update={"key_version": version})
    mapping = rekey(older, column, settings).persist()
    view = "lakehouse_ops_rekey_%s" % uuid.uuid4().hex
    try:
        tokens = int(mapping.count())
        if tokens:
            mapping.createOrReplaceTempView(view)
            spark.sql(
                "MERGE INTO %s t USING %s m ON t.%s = m.old WHEN MATCHED THEN UPDATE SET t.%s = m.new"
                % (target_ref, view, quoted(column), quoted(column))
            )
            log.info("target re-keyed to the batch's key version", extra={"column": column, "version": version})
    finally:
        spark.catalog.dropTempView(view)
        mapping.unpersist()
    return tokens
