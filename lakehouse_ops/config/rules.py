"""A loaded config: its sections, its table rules, and each table's effective policy with who set each value."""

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.config.pseudo import PseudonymizationConfig
from lakehouse_ops.config.sections import (
    AwsConfig,
    CatalogConfig,
    ErasureConfig,
    HealthConfig,
    HistoryConfig,
    MetricsConfig,
    ShipConfig,
    SparkConfig,
)
from lakehouse_ops.errors import ConfigError

BUILTIN = "built-in default"
# Where each optional section is documented (named in the error when a command needs a section that is absent).
SECTION_DOCS = {
    "ingest": "docs/ingest.md",
    "pseudonymization": "docs/pseudonymization.md",
    "erasure": "docs/pseudonymization.md",
    "ship": "docs/emr-serverless.md",
}


@dataclass(frozen=True)
class TableRule:
    index: int
    match: str
    overrides: Dict[str, Any]

    @property
    def label(self) -> str:
        return "tables[%d] (match '%s')" % (self.index, self.match)

    @property
    def specificity(self) -> Tuple[int, int]:
        if not any(ch in self.match for ch in "*?["):
            return (1, len(self.match))
        return (0, sum(1 for ch in self.match if ch not in "*?[]"))

    def matches(self, table: str) -> bool:
        return fnmatch.fnmatchcase(table.lower(), self.match.lower())


@dataclass(frozen=True)
class Config:
    source: str
    catalog: CatalogConfig
    spark: SparkConfig
    defaults: TablePolicy
    rules: Tuple[TableRule, ...] = ()
    ingest: Optional[IngestConfig] = None
    pseudonymization: Optional[PseudonymizationConfig] = None
    erasure: Optional[ErasureConfig] = None
    ship: Optional[ShipConfig] = None
    health: HealthConfig = field(default_factory=HealthConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    aws: AwsConfig = field(default_factory=AwsConfig)
    defaults_raw: Dict[str, Any] = field(default_factory=dict)
    env_keys: Dict[str, str] = field(default_factory=dict)
    raw: Dict[str, Any] = field(default_factory=dict)
    # Effective policies by the rules that make them: merged and validated once per combination, not per call.
    _policies: Dict[Tuple[int, ...], Tuple[TablePolicy, Dict[str, str]]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def section(self, name: str) -> Any:
        """The optional section `name`, or a ConfigError saying that this config lacks it and where it is
        documented."""
        value = getattr(self, name)
        if value is None:
            raise ConfigError("%s has no '%s' section: see %s" % (self.source, name, SECTION_DOCS[name]))
        return value

    def table_name(self, name: str) -> str:
        """`namespace.table`, accepting a name qualified with this config's catalog."""
        parts = name.split(".")
        if len(parts) >= 3 and parts[0] == self.catalog.name:
            parts = parts[1:]
        if len(parts) < 2 or not all(parts):
            raise ConfigError(
                "table name '%s' must be 'namespace.table' (optionally prefixed with the catalog "
                "name '%s')" % (name, self.catalog.name)
            )
        return ".".join(parts)

    def rules_for(self, table: str) -> List[TableRule]:
        table = self.table_name(table)
        hits = [r for r in self.rules if r.matches(table)]
        return sorted(hits, key=lambda r: (r.specificity, r.index))

    def is_managed(self, table: str) -> bool:
        """Tables a rule matches are managed; with no rules at all, every table is."""
        return not self.rules or bool(self.rules_for(table))

    def explain(self, table: str) -> Tuple[TablePolicy, Dict[str, str]]:
        """The effective policy and, per dotted key, which layer set it."""
        rules = self.rules_for(table)
        key = tuple(r.index for r in rules)
        if key not in self._policies:
            self._policies[key] = self._resolve(rules)
        return self._policies[key]

    def _resolve(self, rules: List[TableRule]) -> Tuple[TablePolicy, Dict[str, str]]:
        merged: Dict[str, Any] = {}
        origin: Dict[str, str] = {}
        merge(merged, origin, self.defaults_raw, "defaults (%s)" % self.source)
        for dotted, var in self.env_keys.items():
            if dotted.startswith("defaults."):
                origin[dotted[len("defaults.") :]] = "env %s" % var
        for rule in rules:
            merge(merged, origin, rule.overrides, rule.label)
        policy = TablePolicy.model_validate(merged)
        sources = {key: origin.get(key, BUILTIN) for key in flatten(policy.model_dump())}
        # A key set as a whole mapping (e.g. options) is credited to whoever set any of its entries.
        for key in list(sources):
            if sources[key] == BUILTIN:
                for okey, who in origin.items():
                    if okey.startswith(key + "."):
                        sources[key] = who
        return policy, sources

    def policy_for(self, table: str) -> TablePolicy:
        return self.explain(table)[0]


def flatten(data: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for key, value in data.items():
        dotted = prefix + str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def merge(
    target: Dict[str, Any], origin: Dict[str, str], overrides: Dict[str, Any], who: str, prefix: str = ""
) -> None:
    for key, value in overrides.items():
        dotted = prefix + str(key)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], origin, value, who, dotted + ".")
        else:
            target[key] = copy_tree(value)
            for sub in flatten({key: value}, prefix) if isinstance(value, dict) and value else [dotted]:
                origin[sub] = who


def copy_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_tree(v) for v in value]
    return value
