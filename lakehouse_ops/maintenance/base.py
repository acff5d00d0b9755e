"""What every maintenance action shares: the protocol it follows, the Plan it makes and the Result it reports.

An action is a module with NAME, what it declares about itself (COMMITS: it commits to the table, so a conflict
with another writer is retried; REWRITES_DATA: its rewrite is verified row for row and rolled back on mismatch;
DELETES_FILES: it is not run on a table after an earlier action failed), a pure `plan(policy, health, now_ms)`,
a thin `execute(spark, catalog, table, plan)` and `summarize(outputs)`.

A plan is data: whether the action should run, why, its typed and frozen parameters, the partitions it touches,
and how many bytes it expects to rewrite. `--dry-run` prints plans; `maintain` executes them.
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Protocol, Sequence, Tuple, Type, TypeVar

from lakehouse_ops.units import iso_utc

# partial: the action committed part of its plan and could not finish the rest (the report says what is left)
DONE, SKIPPED, FAILED, PARTIAL = "done", "skipped", "failed", "partial"


def _shown(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, Mapping):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_shown(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class Params:
    """Typed, frozen parameters of one action's plan. Instants are epoch milliseconds (fields ending in `_ms`);
    reports show them as ISO-8601 UTC text under the name without the suffix."""

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_ms") and isinstance(value, int):
                out[f.name[: -len("_ms")]] = iso_utc(value)
            else:
                out[f.name] = _shown(value)
        return out


@dataclasses.dataclass(frozen=True)
class Plan:
    action: str
    run: bool
    reason: str
    params: Optional[Params] = None
    partitions: Tuple[str, ...] = ()
    estimated_bytes: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "action": self.action,
            "run": self.run,
            "reason": self.reason,
            "params": self.params.to_dict() if self.params is not None else {},
            "partitions": list(self.partitions),
            "estimated_bytes": self.estimated_bytes,
        }


P = TypeVar("P", bound=Params)


def params_of(plan: Plan, kind: Type[P]) -> P:
    """The plan's parameters as the action's own Params type (a plan of another action is refused)."""
    if not isinstance(plan.params, kind):
        raise TypeError("plan of %s carries %s, not %s" % (plan.action, type(plan.params).__name__, kind.__name__))
    return plan.params


def skip(action: str, reason: str) -> Plan:
    return Plan(action=action, run=False, reason=reason)


@dataclasses.dataclass
class Result:
    action: str
    status: str
    reason: str
    outputs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    duration_s: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def left_behind_reason(what: str, left: Mapping[str, Sequence[str]]) -> str:
    """ "N <what> in M planned partition(s) not rewritten: p1 (n1), ..." for a rewrite's `remaining` plan."""
    return "%d %s in %d planned partition(s) not rewritten: %s" % (
        sum(len(paths) for paths in left.values()),
        what,
        len(left),
        ", ".join("%s (%d)" % (p or "unpartitioned", len(paths)) for p, paths in sorted(left.items())[:5]),
    )


class Action(Protocol):
    """The protocol every action module follows (see the module docstring)."""

    NAME: str
    COMMITS: bool
    REWRITES_DATA: bool
    DELETES_FILES: bool

    def plan(self, policy: Any, health: Any, now_ms: Optional[int] = None) -> Plan: ...

    def execute(self, spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]: ...

    def summarize(self, outputs: Dict[str, Any]) -> str: ...
