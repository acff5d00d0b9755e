"""lakehouse-ops: keeps Apache Iceberg tables healthy on EMR and EMR Serverless.

Notebook use, with the SparkSession you already have:

    import lakehouse_ops
    report = lakehouse_ops.maintain(spark, "db.events", config="s3://bucket/lakehouse-ops.yaml")
    lakehouse_ops.table_health("db.events", config="conf/emr.yaml")
"""

from lakehouse_ops.version import __version__


def _as_config(config):
    from lakehouse_ops.config import Config, config_from_dict, load_config

    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def maintain(spark, tables, config, dry_run=False, only=None):
    """Maintain one table name, glob or list of them with an existing SparkSession; returns the report dict."""
    from lakehouse_ops.runner import MaintenanceRunner

    names = [tables] if isinstance(tables, str) else list(tables)
    return MaintenanceRunner(_as_config(config), spark=spark, only=only).run(names, dry_run=dry_run)


def table_health(table, config):
    """Health of one table from its metadata (no Spark), as a dict."""
    from lakehouse_ops.health import table_health

    return table_health(_as_config(config), table).to_dict()


def load_config(path):
    from lakehouse_ops.config import load_config as _load

    return _load(path)


__all__ = ["maintain", "table_health", "load_config", "__version__"]
