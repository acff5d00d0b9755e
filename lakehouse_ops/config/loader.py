"""Load the YAML config: validate everything up front, resolve per-table policies, remember who set what.

Layers, lowest first: built-in defaults, the `defaults` section, environment variables, then every `tables` rule
whose `match` fits the table, least specific first (an exact name beats a glob; a glob with more literal characters
beats a shorter one; on a tie the later rule wins).

Environment overrides: `LAKEHOUSE_OPS__<SECTION>__<KEY>[__<KEY>...]=<yaml value>`, for example
`LAKEHOUSE_OPS__CATALOG__WAREHOUSE=s3://bucket/wh` or `LAKEHOUSE_OPS__DEFAULTS__SNAPSHOTS__MAX_AGE_DAYS=3`.
"""

import os
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple, Type

import yaml
from pydantic import BaseModel, ValidationError

from lakehouse_ops.aws.clients import use_aws
from lakehouse_ops.aws.textio import read_text
from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.config.pseudo import PseudonymizationConfig
from lakehouse_ops.config.rules import Config, TableRule, copy_tree, flatten, merge
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

ENV_PREFIX = "LAKEHOUSE_OPS__"
SECTIONS: Dict[str, Type[BaseModel]] = {
    "catalog": CatalogConfig,
    "aws": AwsConfig,
    "spark": SparkConfig,
    "health": HealthConfig,
    "history": HistoryConfig,
    "metrics": MetricsConfig,
    "defaults": TablePolicy,
}
# Sections that may be left out entirely; validated only when present.
OPTIONAL_SECTIONS: Dict[str, Type[BaseModel]] = {
    "ingest": IngestConfig,
    "pseudonymization": PseudonymizationConfig,
    "erasure": ErasureConfig,
    "ship": ShipConfig,
}
TOP_LEVEL_KEYS = (
    "catalog",
    "aws",
    "spark",
    "health",
    "history",
    "metrics",
    "defaults",
    "tables",
    "ingest",
    "pseudonymization",
    "erasure",
    "ship",
)


def _parse_yaml(path: str, text: str) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " line %d, column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        raise ConfigError("%s:%s is not valid YAML: %s" % (path, where, getattr(exc, "problem", exc))) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("%s: the top level must be a mapping with keys %s" % (path, ", ".join(TOP_LEVEL_KEYS)))
    return data


def _apply_env(data: Dict[str, Any], environ: Mapping[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """Fold LAKEHOUSE_OPS__A__B=value into data; return {dotted key: variable name}."""
    applied, problems = {}, []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in var[len(ENV_PREFIX) :].split("__") if p]
        if len(path) < 2 or (path[0] not in SECTIONS and path[0] not in OPTIONAL_SECTIONS):
            problems.append(
                "environment variable %s: expected %s<SECTION>__<KEY>, SECTION one of %s"
                % (var, ENV_PREFIX, ", ".join(s.upper() for s in list(SECTIONS) + list(OPTIONAL_SECTIONS)))
            )
            continue
        try:
            value = yaml.safe_load(environ[var])
        except yaml.YAMLError:
            value = environ[var]
        node = data.setdefault(path[0], {})
        if not isinstance(node, dict):
            problems.append("environment variable %s: section '%s' is not a mapping in the file" % (var, path[0]))
            continue
        for part in path[1:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        applied[".".join(path)] = var
    return applied, problems


def _accepted_keys(model: Type[BaseModel], loc: Tuple[str, ...]) -> List[str]:
    """Field names of the model found at `loc` (for 'unknown key' messages)."""
    for part in loc:
        info = model.model_fields.get(part)
        annotation = info.annotation if info is not None else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            args = getattr(annotation, "__args__", ())
            nested = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if not nested:
                return []
            model = nested[0]
    return sorted(model.model_fields)


_MISSING = object()


def _lookup(raw: Any, loc: Tuple[str, ...]) -> Any:
    node = raw
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _describe(
    exc: ValidationError, model: Type[BaseModel], where: str, touched: Optional[Set[str]] = None, raw: Any = None
) -> List[str]:
    """One line per pydantic error: where, key, value as written, what is accepted."""
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc) or "(section)"
        if touched is not None and not any(
            t == key or t.startswith(key + ".") or key.startswith(t + ".") for t in touched
        ):
            continue
        if err["type"] == "extra_forbidden":
            accepted = _accepted_keys(model, loc[:-1])
            lines.append("%s: unknown key '%s'; accepted keys: %s" % (where, key, ", ".join(accepted)))
            continue
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        value = _lookup(raw, loc) if raw is not None else _MISSING
        value = err.get("input") if value is _MISSING else value
        shown = "" if isinstance(value, dict) else " = %r" % (value,)
        lines.append("%s: %s%s: %s" % (where, key, shown, msg))
    return lines


def load_config(path: str, environ: Optional[Mapping[str, str]] = None) -> Config:
    """Read and validate a config file (local path or s3:// URI); raise ConfigError naming every problem."""
    environ = os.environ if environ is None else environ
    data = _parse_yaml(path, read_text(path, "config file"))
    return config_from_dict(data, source=path, environ=environ)


def config_from_dict(
    data: Dict[str, Any], source: str = "<dict>", environ: Optional[Mapping[str, str]] = None
) -> Config:
    environ = {} if environ is None else environ
    data = copy_tree(data)
    problems = []
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(
                "%s: unknown top-level key '%s'; accepted keys: %s" % (source, key, ", ".join(TOP_LEVEL_KEYS))
            )
    env_keys, env_problems = _apply_env(data, environ)
    problems.extend(env_problems)

    sections: Dict[str, Any] = {}
    for name, model in SECTIONS.items():
        raw = data.get(name) or {}
        if not isinstance(raw, dict):
            problems.append("%s: '%s' must be a mapping, got %r" % (source, name, raw))
            continue
        try:
            sections[name] = model.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_describe(exc, model, "%s: %s" % (source, name), raw=raw))

    for name, model in OPTIONAL_SECTIONS.items():
        if data.get(name) is None:
            continue
        if not isinstance(data[name], dict):
            problems.append("%s: '%s' must be a mapping, got %r" % (source, name, data[name]))
            continue
        try:
            sections[name] = model.model_validate(data[name])
        except ValidationError as exc:
            problems.extend(_describe(exc, model, "%s: %s" % (source, name), raw=data[name]))

    rules = _load_rules(data.get("tables"), data.get("defaults") or {}, source, problems)
    problems.extend(_cross_section_problems(sections, source))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    use_aws(sections["aws"].endpoint_url, sections["aws"].region)
    return Config(
        source=source,
        catalog=sections["catalog"],
        aws=sections["aws"],
        spark=sections["spark"],
        defaults=sections["defaults"],
        health=sections["health"],
        history=sections["history"],
        metrics=sections["metrics"],
        rules=tuple(rules),
        ingest=sections.get("ingest"),
        pseudonymization=sections.get("pseudonymization"),
        erasure=sections.get("erasure"),
        ship=sections.get("ship"),
        defaults_raw=data.get("defaults") or {},
        env_keys=env_keys,
        raw=data,
    )


def _cross_section_problems(sections: Dict[str, Any], source: str) -> List[str]:
    """Sections that lean on another one: the ingest transform and pseudonym tables need the pseudonymization
    section (its service or keys)."""
    problems = []
    has_pseudo = sections.get("pseudonymization") is not None
    ingest = sections.get("ingest")
    if ingest is not None and ingest.pseudonymize is not None and not has_pseudo:
        problems.append(
            "%s: ingest.pseudonymize needs a 'pseudonymization' section (service_url, or keys for "
            "in_executor mode)" % source
        )
    erasure = sections.get("erasure")
    for i, entry in enumerate(erasure.tables if erasure is not None else []):
        if entry.holds == "pseudonyms" and not has_pseudo:
            problems.append(
                "%s: erasure.tables[%d] (%s) holds pseudonyms, which needs a 'pseudonymization' "
                "section to match subjects" % (source, i, entry.table)
            )
    return problems


def _load_rules(raw_rules: Any, defaults_raw: Any, source: str, problems: List[str]) -> List[TableRule]:
    rules: List[TableRule] = []
    if raw_rules is None:
        return rules
    if not isinstance(raw_rules, list):
        problems.append("%s: 'tables' must be a list of rules, each with a 'match' key" % source)
        return rules
    for index, raw in enumerate(raw_rules):
        where = "%s: tables[%d]" % (source, index)
        if not isinstance(raw, dict) or not isinstance(raw.get("match"), str) or not raw.get("match"):
            problems.append(
                "%s: a rule must be a mapping with a non-empty string 'match' (a table name or a glob "
                "such as 'analytics.*')" % where
            )
            continue
        overrides = {k: v for k, v in raw.items() if k != "match"}
        rule = TableRule(index=index, match=raw["match"], overrides=overrides)
        merged: Dict[str, Any] = {}
        origin: Dict[str, str] = {}
        merge(merged, origin, defaults_raw if isinstance(defaults_raw, dict) else {}, "defaults")
        merge(merged, origin, overrides, rule.label)
        try:
            TablePolicy.model_validate(merged)
        except ValidationError as exc:
            touched = set(flatten(overrides)) | set(overrides)
            problems.extend(_describe(exc, TablePolicy, "%s: %s" % (source, rule.label), touched, merged))
        rules.append(rule)
    return rules
