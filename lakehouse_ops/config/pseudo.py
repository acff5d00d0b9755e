"""The pseudonymization section, and the settings the executors receive as they are (one model each, so a
default or a range is written once)."""

from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import Field, ValidationError, model_validator

from lakehouse_ops.config.base import Model
from lakehouse_ops.errors import ConfigError


class PseudoSource(Model):
    """Where rows to pseudonymize come from: an Iceberg table, or files (Parquet by default)."""

    table: Optional[str] = None
    path: Optional[str] = None
    format: Literal["parquet", "json", "csv", "orc"] = "parquet"

    @model_validator(mode="after")
    def _one(self) -> "PseudoSource":
        if bool(self.table) == bool(self.path):
            raise ValueError("a source needs exactly one of table or path")
        return self


class PseudoJob(Model):
    source: PseudoSource
    target: str
    columns: List[str] = Field(min_length=1)
    deterministic: bool = True
    # append: add the converted rows; overwrite: replace the target's contents.
    write_mode: Literal["append", "overwrite"] = "append"


class _Settings(Model):
    """Settings built in code (a notebook, a job): a value out of range is a ConfigError naming it."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = [
                "%s: %s" % (".".join(str(p) for p in e["loc"]) or "settings", e["msg"].replace("Value error, ", ""))
                for e in exc.errors()
            ]
            raise ConfigError("%s: %s" % (type(self).__name__, "; ".join(problems))) from None


class ServiceSettings(_Settings):
    """How the executors call the pseudonymization service."""

    url: str
    # The API key comes from this environment variable (set it on executors with spark.executorEnv.*) ...
    api_key_env: Optional[str] = "LAKEHOUSE_OPS_PSEUDO_API_KEY"
    # ... or from this Secrets Manager secret. Never from the config file.
    api_key_secret: Optional[str] = None
    batch_size: int = Field(900, ge=1, le=100000)
    max_concurrent_requests: int = Field(4, ge=1, le=64)
    # Cap on calls in flight against the service from the whole job (Lambda's default concurrency is 1,000).
    max_total_concurrency: int = Field(200, ge=1, le=10000)
    connect_timeout: float = Field(3.05, gt=0, le=60)
    read_timeout: float = Field(29.0, gt=0, le=900)
    max_retries: int = Field(6, ge=0, le=20)
    max_retry_seconds: float = Field(120.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _concurrency(self) -> "ServiceSettings":
        if self.max_concurrent_requests > self.max_total_concurrency:
            raise ValueError(
                "max_concurrent_requests (%d) must not exceed max_total_concurrency (%d)"
                % (self.max_concurrent_requests, self.max_total_concurrency)
            )
        return self


class InExecutorSettings(_Settings):
    """The service's algorithm inside the executors: no HTTP at all. The keys come from a Secrets Manager secret
    (or a key file, for development), read once per executor process; tokens equal the service's for the same
    keys, so both modes can be mixed on one table."""

    keys_secret: Optional[str] = None
    key_file: Optional[str] = None
    # The key version tokens are made under: a job sets it once, from the driver, so that executors whose cached
    # keyring is older than a rotation never mix versions. None: the keyring's current.
    key_version: Optional[int] = Field(None, ge=1, le=255)
    batch_size: int = Field(100000, ge=1)
    max_concurrent_requests: int = Field(1, ge=1)
    max_total_concurrency: int = Field(1000000, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> "InExecutorSettings":
        if bool(self.keys_secret) == bool(self.key_file):
            raise ValueError("in-executor mode needs exactly one of keys_secret or key_file")
        return self


def _as_service(name: str) -> Any:
    """The service setting's own field (default and range): written once, in ServiceSettings."""
    return ServiceSettings.model_fields[name]


class PseudonymizationConfig(Model):
    mode: Literal["service", "in_executor"] = "service"
    service_url: Optional[str] = None
    api_key_env: Optional[str] = _as_service("api_key_env")
    api_key_secret: Optional[str] = _as_service("api_key_secret")
    keys_secret: Optional[str] = None
    key_file: Optional[str] = None
    batch_size: int = _as_service("batch_size")
    max_concurrent_requests: int = _as_service("max_concurrent_requests")
    max_total_concurrency: int = _as_service("max_total_concurrency")
    max_retries: int = _as_service("max_retries")
    jobs: Dict[str, PseudoJob] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mode_inputs(self) -> "PseudonymizationConfig":
        if self.mode == "service" and not self.service_url:
            raise ValueError("mode 'service' needs service_url")
        if self.mode == "in_executor" and bool(self.keys_secret) == bool(self.key_file):
            raise ValueError("mode 'in_executor' needs exactly one of keys_secret or key_file")
        return self

    def settings(self) -> Union["ServiceSettings", "InExecutorSettings"]:
        """The settings the executors receive, for this section's mode."""
        if self.mode == "in_executor":
            return InExecutorSettings(keys_secret=self.keys_secret, key_file=self.key_file)
        return ServiceSettings(
            url=self.service_url,
            api_key_env=self.api_key_env,
            api_key_secret=self.api_key_secret,
            batch_size=self.batch_size,
            max_concurrent_requests=self.max_concurrent_requests,
            max_total_concurrency=self.max_total_concurrency,
            max_retries=self.max_retries,
        )
