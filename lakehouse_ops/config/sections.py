"""The config's other sections: the catalog, AWS, Spark, health, erasure and shipping to EMR (ingest: ingest.py)."""

from typing import Any, Dict, List, Literal, Optional

from pydantic import Field, field_validator, model_validator

from lakehouse_ops.config.base import Model, Size
from lakehouse_ops.jobs import JOBS
from lakehouse_ops.units import GB

CATALOG_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class CatalogConfig(Model):
    name: str = Field("local", pattern=CATALOG_NAME)
    type: Literal["hadoop", "glue", "rest", "hive"] = "hadoop"
    warehouse: Optional[str] = None
    uri: Optional[str] = None
    # Passed to Spark as spark.sql.catalog.<name>.<key> and to pyiceberg's catalog as-is.
    properties: Dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_location(self) -> "CatalogConfig":
        if self.type in ("hadoop", "glue") and not self.warehouse:
            raise ValueError("catalog type '%s' needs a warehouse (a local path or s3:// URI)" % self.type)
        if self.type in ("rest", "hive") and not self.uri:
            raise ValueError("catalog type '%s' needs a uri" % self.type)
        return self


class AwsConfig(Model):
    # Another endpoint for every AWS call: boto3's clients, pyiceberg's catalogs and S3 FileIO, Spark's catalog
    # (moto, LocalStack). LAKEHOUSE_OPS_AWS_ENDPOINT_URL, when set, wins. A config read from s3:// is fetched before
    # this is known: point the variable there for that.
    endpoint_url: Optional[str] = None
    # The Region of every AWS call; AWS_REGION, when set, wins.
    region: Optional[str] = None


class SparkConfig(Model):
    # local: start Spark here with the Iceberg jar from the `local` extra; cluster: use the cluster's Spark/Iceberg.
    mode: Literal["local", "cluster"] = "local"
    master: str = "local[*]"
    app_name: str = "lakehouse-ops"
    conf: Dict[str, str] = Field(default_factory=dict)
    # local mode: read s3:// and s3a:// through Hadoop's S3A (hadoop-aws from Maven Central, at the endpoint of
    # aws.endpoint_url when one is set), as EMR reads them through EMRFS, and put the AWS SDK Iceberg's GlueCatalog
    # and S3FileIO need on the classpath (a glue catalog always gets them): landing objects on S3, S3 tables.
    local_s3: bool = False

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value


class HealthConfig(Model):
    # Where per-manifest health aggregates are kept between scans (a local directory, or an s3:// prefix shared by
    # a fleet's runs): a repeated scan decodes only the manifests of new commits. None: every scan reads them all.
    cache: Optional[str] = None
    # Processes a large first scan (over 16 MB of manifests to decode) is spread over; None: every core. 1: none.
    processes: Optional[int] = Field(None, ge=1, le=256)
    # A scan with at least this many files to decode runs on the job's Spark session (Iceberg's `entries` metadata
    # table, decoded in the JVM over the executors) when the job has one (maintain, erase); None: never.
    spark_min_files: Optional[int] = Field(1000000, ge=1)
    # Ask AWS for other automation on each table (Glue table optimizers, S3 lifecycle rules on its location):
    # two API calls per table (the lifecycle once per bucket per five minutes). Tables outside S3 and Glue: none.
    check_automation: bool = True


class HistoryConfig(Model):
    """Every maintain, ingest, pseudonymize and erase run (not dry runs) appends one row per table to this Iceberg
    table, created on first use: `lakehouse-ops report --html` and Athena read it."""

    enabled: bool = True
    table: str = Field("lakehouse_ops.run_history", pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


class MetricsConfig(Model):
    """CloudWatch Embedded Metric Format lines (on stderr, with the logs) from every job: per maintenance action,
    per ingest batch, per pseudonymize and erase run (docs/metrics.md)."""

    emf: bool = False
    namespace: str = Field("lakehouse-ops", pattern=r"^[A-Za-z0-9._/#-][A-Za-z0-9 ._/#:-]{0,254}$")
    # Fixed dimensions added to every line's own (Job, Table, Action), e.g. {Environment: prod}.
    dimensions: Dict[str, str] = Field(default_factory=dict)

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, value: Dict[str, str]) -> Dict[str, str]:
        if len(value) > 27:
            raise ValueError("at most 27 dimensions (CloudWatch takes 30, three are the job's own)")
        for key, text in value.items():
            if not key or key.startswith(":") or len(key) > 250 or not text or len(text) > 1024:
                raise ValueError(
                    "dimension %r: a name of 1-250 characters not starting with ':', a value of 1-1024 characters" % key
                )
            if key in ("Job", "Table", "Action", "Target"):
                raise ValueError("dimension %s is set by each job itself" % key)
        return value


class ErasureTable(Model):
    """A table that holds subject data, in one or more columns (a row matching any of them is erased)."""

    table: str
    columns: List[str] = Field(min_length=1)
    # identifiers: the columns hold plaintext; pseudonyms: they hold tokens of the pseudonymization service.
    holds: Literal["identifiers", "pseudonyms"] = "identifiers"
    # For pseudonym columns. tokens: match the subject's deterministic token(s) (fast; in service mode only the
    # current key version's token, so after a key rotation use reidentify or pass the old pseudonyms);
    # reidentify: re-identify the column's distinct tokens and match plaintext (randomized tokens, any key version).
    match: Literal["tokens", "reidentify"] = "tokens"


class ErasureConfig(Model):
    tables: List[ErasureTable] = Field(min_length=1)
    # Where receipts are written (a directory or s3:// prefix); one JSON file per erasure run.
    receipts: Optional[str] = None


class EmrServerlessTarget(Model):
    application_id: str
    execution_role_arn: str
    # Driver and executor logs (S3), and optionally CloudWatch Logs.
    log_uri: Optional[str] = None
    cloudwatch_log_group: Optional[str] = None
    # EMR Serverless images carry the Iceberg runtime here; the job run adds it with spark.jars.
    iceberg_jar: str = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
    execution_timeout_minutes: int = Field(240, ge=1, le=1440)


class TransientCluster(Model):
    """A cluster `submit --transient` creates for its steps (RunJobFlow) and that ends when they have run."""

    release_label: str = Field(pattern=r"^emr-(\d+\.\d+\.\d+|spark-\d+\.\d+\.\d+)$")
    service_role: str = "EMR_DefaultRole"
    instance_profile: str = "EMR_EC2_DefaultRole"  # the nodes' instance profile (JobFlowRole)
    instance_type: str = "m7g.xlarge"
    core_instances: int = Field(2, ge=0, le=500)
    log_uri: Optional[str] = Field(None, pattern=r"^s3://[^/]+/.*")
    subnet_id: Optional[str] = None
    security_configuration: Optional[str] = None  # needed for runtime roles (execution_role_arn)
    # What `package --upload` printed as bootstrap_action: installs lakehouse-ops on every node (needed for
    # deploy_mode client; cluster mode runs from the archive).
    bootstrap_action: Optional[str] = Field(None, pattern=r"^s3://[^/]+/.*")
    # The cluster ends this long after it fell idle, whatever happened to its steps (a safety net: no idle cluster
    # keeps billing).
    idle_timeout_minutes: int = Field(30, ge=1, le=10080)


class EmrTarget(Model):
    cluster_id: Optional[str] = None  # the long-running cluster steps are added to (or `transient`)
    transient: Optional[TransientCluster] = None
    action_on_failure: Literal["CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"] = "CONTINUE"
    deploy_mode: Literal["cluster", "client"] = "cluster"
    # EMR on EC2 runtime roles: the IAM role each step runs as (the cluster's security configuration must enable
    # them); None: the cluster's instance profile.
    execution_role_arn: Optional[str] = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+")

    @model_validator(mode="after")
    def _a_cluster(self) -> "EmrTarget":
        if not self.cluster_id and self.transient is None:
            raise ValueError("name the cluster (cluster_id) or how to create one for each submit (transient)")
        if self.execution_role_arn and self.transient is not None and not self.transient.security_configuration:
            raise ValueError(
                "steps as a runtime role (execution_role_arn) need a security configuration that enables runtime "
                "roles on the cluster: set transient.security_configuration"
            )
        return self


class Schedule(Model):
    """One EventBridge Scheduler schedule that starts an EMR Serverless job run."""

    name: str = Field(pattern=r"^[0-9a-zA-Z\-_.]{1,64}$")
    job: str = "maintain"  # one of lakehouse_ops.jobs.JOBS
    # The job's own arguments, e.g. ["--only", "compaction", "analytics.*"].
    args: List[str] = Field(default_factory=list)
    # rate(1 hour), cron(0 3 * * ? *) or at(...), as EventBridge Scheduler takes them.
    expression: str = Field(pattern=r"^(rate|cron|at)\(.+\)$")
    timezone: str = "UTC"
    flexible_window_minutes: int = Field(0, ge=0, le=1440)
    enabled: bool = True

    @field_validator("job")
    @classmethod
    def _known_job(cls, value: str) -> str:
        if value not in JOBS:
            raise ValueError("job must be one of %s" % ", ".join(JOBS))
        return value


SQS_QUEUE_ARN = r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[\w-]{1,80}(\.fifo)?$"


class ScheduleRetry(Model):
    """What EventBridge Scheduler does when it cannot start a run (throttled, the application stopped, a role that
    cannot pass): tries again up to `max_attempts` times within `max_event_age_minutes`, then gives the event to
    the dead-letter queue. Scheduler's own defaults (185 attempts over a day) would pile maintenance runs up."""

    max_attempts: int = Field(2, ge=0, le=185)
    max_event_age_minutes: int = Field(60, ge=1, le=1440)


class Alerts(Model):
    """Failed or cancelled runs of the config's targets sent to an SNS topic by EventBridge rules `schedule`
    creates (ship/alerts.py)."""

    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
    # The rules are named <rule_prefix>-serverless-failures and <rule_prefix>-step-failures.
    rule_prefix: str = Field("lakehouse-ops", pattern=r"^[0-9a-zA-Z\-_.]{1,40}$")


class RunBudget(Model):
    """What one maintenance run over several tables may take on."""

    max_tables: int = Field(20, ge=1, le=10000)
    max_rewrite_bytes: Size = Field(2 * 1024 * GB, ge=1)


class ShipConfig(Model):
    # The Python of the cluster image (EMR 7.x: 3.9); `package` refuses an archive built with another one.
    python: str = Field("3.9", pattern=r"^3\.\d+$")
    # Where submit uploads entry points, the archive or wheel, and the config (an s3:// prefix).
    artifacts: str = Field(pattern=r"^s3://[^/]+/.*")
    emr_serverless: Optional[EmrServerlessTarget] = None
    emr: Optional[EmrTarget] = None
    # Extra Spark settings for submitted runs (on top of the catalog's and the `spark.conf` section's).
    spark_conf: Dict[str, str] = Field(default_factory=dict)
    tags: Dict[str, str] = Field(default_factory=dict)
    # Per-table leases (S3 objects with an expiry) so two maintenance runs never work on one table at once.
    leases: Optional[str] = Field(None, pattern=r"^s3://[^/]+/.*")
    # A lease is renewed every third of this while its run works; a run that dies frees its tables after it.
    lease_minutes: int = Field(30, ge=1, le=10080)
    budget: RunBudget = Field(default_factory=RunBudget)
    scheduler_role_arn: Optional[str] = None
    schedule_group: str = Field("lakehouse-ops", pattern=r"^[0-9a-zA-Z\-_.]{1,64}$")
    schedules: List[Schedule] = Field(default_factory=list)
    schedule_retry: ScheduleRetry = Field(default_factory=ScheduleRetry)
    # An SQS queue ARN for the events of runs Scheduler could not start (the scheduler role needs sqs:SendMessage
    # on it); without one, such a run is only counted in Scheduler's CloudWatch metrics.
    schedule_dead_letter_arn: Optional[str] = Field(
        None, pattern=r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[\w-]{1,80}(\.fifo)?$"
    )

    alerts: Optional[Alerts] = None

    @model_validator(mode="after")
    def _consistent(self) -> "ShipConfig":
        names = [s.name for s in self.schedules]
        if len(names) != len(set(names)):
            raise ValueError("schedule names must be unique")
        if self.schedules and (self.emr_serverless is None or not self.scheduler_role_arn):
            raise ValueError("schedules start EMR Serverless job runs: they need emr_serverless and scheduler_role_arn")
        if self.alerts is not None and self.emr_serverless is None and (self.emr is None or not self.emr.cluster_id):
            raise ValueError("alerts watch the runs of emr_serverless or emr.cluster_id: neither is configured")
        return self
