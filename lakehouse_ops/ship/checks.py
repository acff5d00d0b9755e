"""What a run needs before it starts, checked before anything is sent: the archive it unpacks is in S3, and the
release of the EMR Serverless application or the EMR cluster runs the Python the archive was built for."""

from typing import Any, Optional

from lakehouse_ops.config import Config
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.logs import get_logger
from lakehouse_ops.ship import requests as req

log = get_logger("ship.checks")


def check_archive(archive: Optional[str], s3: Any = None) -> None:
    """An s3:// archive must be there before a run starts (a run that cannot unpack it fails minutes later)."""
    if not archive or not archive.startswith("s3://"):
        return
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.aws.s3 import object_exists, split_uri

    bucket, key = split_uri(archive)
    if not object_exists(s3 or client("s3"), bucket, key):
        raise ConfigError(
            "archive %s does not exist: upload it (`lakehouse-ops package --upload`) or fix the URI" % archive
        )


def check_application_python(config: Config) -> None:
    """The EMR Serverless application's release runs the Python the archive was built for (ship.python)."""
    from lakehouse_ops.aws.clients import client

    ship = config.section("ship")
    app = req.need_target(config, "emr_serverless").application_id
    try:
        label = client("emr-serverless").get_application(applicationId=app)["application"]["releaseLabel"]
    except Exception as exc:  # the run itself will say what is wrong with the application or the access to it
        log.warning("the application's release could not be read", extra={"error": str(exc)[:200]})
        return
    req.check_release_python(label, ship.python, "EMR Serverless application %s" % app)


def check_cluster_python(config: Config) -> None:
    """The EMR cluster's release runs the Python the archive was built for (ship.python)."""
    from lakehouse_ops.aws.clients import client

    ship = config.section("ship")
    cluster = req.need_target(config, "emr").cluster_id
    if not cluster:
        return
    try:
        label = client("emr").describe_cluster(ClusterId=cluster)["Cluster"].get("ReleaseLabel") or ""
    except Exception as exc:  # the step itself will say what is wrong with the cluster or the access to it
        log.warning("the cluster's release could not be read", extra={"error": str(exc)[:200]})
        return
    req.check_release_python(label, ship.python, "EMR cluster %s" % cluster)
