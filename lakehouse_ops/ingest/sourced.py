"""A batch's rows as read, each with the object (identity and S3 URI) it came from; and its misfit records put in
the quarantine table."""

from typing import Any, Collection, Dict, List, Mapping, Optional, Set

from lakehouse_ops.ingest.csvread import has_header, read_headers
from lakehouse_ops.ingest.evolve import CORRUPT
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.pin import Pinned
from lakehouse_ops.ingest.read import Files, Located, load, spark_spellings
from lakehouse_ops.ingest.state import JobState
from lakehouse_ops.ingest.target import QUARANTINE_REASON
from lakehouse_ops.sqltext import quote_string

SOURCE, IDENTITY = "_lakehouse_ops_source", "_lakehouse_ops_identity"


class SourcedRows(JobState):
    """Reading a batch's pinned objects (a mixin of an IngestJob, as its writes are)."""

    spellings: Set[str]  # JSON keys naming a column in another case, seen in this job's files (jsonread)

    @property
    def _quarantining(self) -> bool:
        return self.quarantine_ref is not None

    def _pin(self, todo: Mapping[str, S3Object]) -> Pinned:
        """Pin `todo` to its bytes; CSV files with a header also have it read and checked (a header that cannot be
        mapped to the target refuses its file)."""
        pinned = self.pinner.pin(todo)
        if has_header(self.cfg) and pinned.located:
            paths = {i: path for i, (path, _) in pinned.located.items()}
            pinned.headers, refused = read_headers(self.spark, self.cfg, paths, [f.name for f in self.schema.fields])
            for identity in refused:
                pinned.located.pop(identity)
            pinned.failed.update(refused)
        return pinned

    def _files(self, located: Located, headers: Mapping[str, List[str]]) -> Files:
        paths = [path for path, _ in located.values()]
        return Files(paths, {p: list(headers[p]) for p in paths if p in headers}, set(self.spellings))

    def _sourced(self, located: Located, todo: Mapping[str, S3Object], headers: Mapping[str, List[str]]) -> Any:
        """The rows of the objects in `located`, each with the S3 URI (SOURCE) and identity (IDENTITY) of the
        object it came from (one object's versions share a URI; each is read from its own file)."""
        from pyspark.sql import functions as F

        pairs = [
            (spelling, todo[identity].uri, identity)
            for identity, (_, uri) in located.items()
            for spelling in spark_spellings(uri)
        ]
        sources = self.spark.createDataFrame(
            pairs, "_lakehouse_ops_file STRING, %s STRING, %s STRING" % (SOURCE, IDENTITY)
        )
        df = load(self.spark, self.cfg, self.schema, self._files(located, headers))
        return df.join(F.broadcast(sources), "_lakehouse_ops_file")

    def _quarantine(
        self,
        batch: str,
        pinned: Pinned,
        todo: Mapping[str, S3Object],
        metrics: Dict[str, Any],
        replace: bool = False,
        only: Optional[Collection[str]] = None,
    ) -> None:
        """Write the batch's misfit records to the quarantine table (after the target commit, before the ledger
        says committed: an interruption in between is redone, replacing what was written). `replace`: first
        delete the rows earlier batches quarantined for these objects (by identity: other versions of a key keep
        theirs); `only`: the identities the commit's observation saw misfits in (the others are not read again)."""
        from pyspark.sql import functions as F

        if not self._quarantining or self.cfg.format not in ("json", "csv"):
            return
        located = pinned.located
        if replace:
            listed = ", ".join(quote_string(i) for i in sorted(located))
            self.spark.sql("DELETE FROM %s WHERE source_identity IN (%s)" % (self.quarantine_ref, listed))
        elif not metrics.get("misfits"):
            return
        if only is not None:
            located = {i: v for i, v in located.items() if i in only}
        # Spark refuses a scan that needs only the corrupt-record column unless the parsed rows are cached.
        parsed = self._sourced(located, todo, pinned.headers).cache()
        try:
            # With pseudonymized columns the raw text would put plaintext in the lake: it is withheld (the
            # record stays in its source object).
            raw = F.lit(None).cast("string") if self.cfg.pseudonymize is not None else F.col(CORRUPT)
            parsed.filter(F.col(CORRUPT).isNotNull()).select(
                raw.alias("raw"),
                F.col(SOURCE).alias("source_object"),
                F.lit(QUARANTINE_REASON).alias("reason"),
                F.lit(batch).alias("batch_id"),
                F.current_timestamp().alias("quarantined_at"),
                F.col(IDENTITY).alias("source_identity"),
            ).writeTo(self.quarantine_ref).append()
        finally:
            parsed.unpersist()
        metrics["quarantined"] = self.spark.table(self.quarantine_ref).filter(F.col("batch_id") == batch).count()
