"""What earlier maintain runs did to each table, from the run history, read once per run with pyiceberg: the
circuit breaker's input (maintenance/breaker.py). No history (turned off, not written yet, unreadable) means no
suspension, and the report says why the breaker could not look."""

import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional

from lakehouse_ops.engine.history import read_history
from lakehouse_ops.errors import CatalogError
from lakehouse_ops.errors import first_line as _first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance.breaker import Suspension, by_table, suspended

log = get_logger("runner.past")
LOOKBACK_DAYS = 30  # runs older than this never hold a breaker open


class PastRuns:
    def __init__(self, config: Any, catalog_tables: Any) -> None:
        self.config = config
        self.catalog_tables = catalog_tables
        self._runs: Optional[Dict[str, List[Mapping[str, Any]]]] = None
        self.note: Optional[str] = None  # why the history could not be read

    def _load(self) -> Dict[str, List[Mapping[str, Any]]]:
        if self._runs is None:
            self._runs = {}
            if self.config.history.enabled:
                since = time.time() - LOOKBACK_DAYS * 24 * 3600
                try:
                    self._runs = by_table(read_history(self.catalog_tables, self.config.history.table, since))
                except CatalogError:
                    pass  # no run recorded yet
                except Exception as exc:  # maintenance goes on; the breaker cannot see
                    self.note = "run history not read: %s" % _first_line(exc)
                    log.warning("the circuit breaker cannot read the run history", extra={"error": self.note})
        return self._runs

    def suspension(self, table: str, action: str, policy: Any, now_ms: int) -> Optional[Suspension]:
        runs = self._load().get(table, [])
        now = datetime.fromtimestamp(now_ms / 1000.0, timezone.utc)
        return suspended(runs, action, policy.after_failures, policy.cooldown_hours, now)
