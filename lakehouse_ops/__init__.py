"""lakehouse-ops: keeps Apache Iceberg tables healthy on EMR and EMR Serverless.

Notebook use, with the SparkSession you already have:

    import lakehouse_ops
    report = lakehouse_ops.maintain(spark, "db.events", config="s3://bucket/lakehouse-ops.yaml")
    lakehouse_ops.table_health("db.events", config="conf/emr.yaml")
"""

from typing import TYPE_CHECKING, Any, Dict, Iterable, Mapping, Optional, Union

from lakehouse_ops.version import __version__

if TYPE_CHECKING:
    from lakehouse_ops.config import Config

ConfigLike = Union["Config", Mapping[str, Any], str]  # a Config, its dict, or a local path or s3:// URI


def _as_config(config: ConfigLike) -> "Config":
    from lakehouse_ops.config import Config, config_from_dict, load_config

    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return config_from_dict(dict(config))
    return load_config(config)


def maintain(
    spark: Any,
    tables: Union[str, Iterable[str]],
    config: ConfigLike,
    dry_run: bool = False,
    only: Optional[Iterable[str]] = None,
) -> Dict[str, Any]:
    """Maintain one table name, glob or list of them with an existing SparkSession; returns the report dict."""
    from lakehouse_ops.runner import MaintenanceRunner

    names = [tables] if isinstance(tables, str) else list(tables)
    return MaintenanceRunner(_as_config(config), spark=spark, only=only).run(names, dry_run=dry_run)


def table_health(table: str, config: ConfigLike) -> Dict[str, Any]:
    """Health of one table from its metadata (no Spark), as a dict."""
    from lakehouse_ops.health import table_health

    return table_health(_as_config(config), table).to_dict()


def load_config(path: str) -> "Config":
    """The validated config at a local path or s3:// URI."""
    from lakehouse_ops.config import load_config as _load

    return _load(path)


__all__ = ["maintain", "table_health", "load_config", "__version__"]
