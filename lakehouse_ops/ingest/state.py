"""What the parts of an IngestJob share: the job (job.py) sets these up; its start-up (target.py) and its writes
(write.py) are mixins that work on them."""

from typing import Any, Callable, Dict, Optional, Set, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.ingest.claims import Claims
from lakehouse_ops.ingest.ledger import Ledger
from lakehouse_ops.ingest.pin import Pinner


class JobState:
    config: Config
    cfg: IngestConfig
    catalog: str
    target: str  # the target table's name
    target_ref: str  # the same, quoted and qualified for SQL
    quarantine_ref: Optional[str]  # None: misfit records fail their objects instead
    schema: Any  # the target's data columns as a Spark StructType
    ledger: Ledger
    claims: Claims
    enrich: Optional[Callable[..., Any]]
    on_stage: Callable[[str], None]  # called as a batch reaches each of job.STAGES
    key_versions: Dict[str, Tuple[int, float]]  # upsert keys pseudonymized deterministically: rekey.Known

    @property
    def spark(self) -> Any:
        raise NotImplementedError

    def _enable_wap(self) -> None:
        """Stage the target's appends (write-audit-publish): target.py."""
        raise NotImplementedError

    @property
    def pinner(self) -> Pinner:
        """Pins each object to its announced bytes before it is read."""
        raise NotImplementedError

    def _meta_columns(self) -> Set[str]:
        """The columns the job adds to the target (source object, ingest time, batch id, rescued data)."""
        added = {self.cfg.source_column, self.cfg.ingest_time_column, self.cfg.batch_column}
        return added | ({self.cfg.rescued_data_column} if self.cfg.schema_evolution == "rescue" else set())
