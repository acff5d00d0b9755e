"""Config: YAML file -> validated, frozen models; per-table policies with their provenance.

base (shared model settings) <- policy (table policies), pseudo, sections <- rules (Config, table rules)
<- loader (YAML, environment, validation messages).
"""

from lakehouse_ops.config.loader import config_from_dict, load_config
from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.config.rules import Config, TableRule
from lakehouse_ops.config.sections import CatalogConfig, SparkConfig

__all__ = ["Config", "TableRule", "load_config", "config_from_dict", "CatalogConfig", "SparkConfig", "TablePolicy"]
