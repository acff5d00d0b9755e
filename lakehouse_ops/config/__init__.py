"""Config: YAML file -> validated, frozen models; per-table policies with their provenance."""
from lakehouse_ops.config.loader import Config, TableRule, config_from_dict, load_config
from lakehouse_ops.config.models import CatalogConfig, SparkConfig, TablePolicy

__all__ = ["Config", "TableRule", "load_config", "config_from_dict", "CatalogConfig", "SparkConfig", "TablePolicy"]
