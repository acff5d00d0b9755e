"""What every maintenance action shares: the Plan it makes and the Result it reports.

A plan is data: it says whether the action should run, why, with which procedure arguments, on which
partitions, and how many bytes it expects to rewrite. `--dry-run` prints plans; `maintain` executes them.
"""
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class Plan:
    action: str
    run: bool
    reason: str
    params: Dict[str, Any] = field(default_factory=dict)
    partitions: List[str] = field(default_factory=list)
    estimated_bytes: int = 0

    def to_dict(self):
        return asdict(self)


def skip(action, reason):
    return Plan(action=action, run=False, reason=reason)


@dataclass
class Result:
    action: str
    status: str
    reason: str
    outputs: Dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_dict(self):
        return asdict(self)
