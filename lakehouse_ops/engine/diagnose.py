"""What a failure of Spark on the AWS stack says is missing: a jar, a Hadoop filesystem, a Region, credentials or a
permission, named as the setting or IAM action that supplies it. Spark's and Iceberg's errors reach Python as
pages of Java text; the line that matters is found here, once, for the runner's reports and the CLI.
"""

import re
from typing import Callable, List, Optional, Pattern, Tuple, Union

from lakehouse_ops.aws.clients import describe_failure
from lakehouse_ops.engine.jars import Coordinate, hadoop_aws, iceberg_aws, installed_spark_version

_Answer = Union[str, Callable[["re.Match[str]"], str]]


def _coordinates(jars: Tuple[Coordinate, ...]) -> str:
    return " and ".join(":".join(c) for c in jars)


_FOUND: List[Tuple[Pattern[str], _Answer]] = [
    (
        re.compile(r"not authorized to perform: ([a-z0-9-]+:[A-Za-z0-9]+)(?: on resource: (\S+))?"),
        lambda m: (
            "AWS refused %s%s: the role Spark runs with needs that permission"
            % (m.group(1), " on " + m.group(2).rstrip(".,;") if m.group(2) else "")
        ),
    ),
    (
        # SDK v2 (S3FileIO), with or without a message; SDK v1 (S3A, EMRFS): "(Service: Amazon S3; Status Code: 403".
        re.compile(r"S3Exception: [^\n]*?\(Service: S3, Status Code: 403|\(Service: Amazon S3; Status Code: 403"),
        "S3 refused a request (403 Access Denied): the role Spark runs with needs s3:GetObject, "
        "s3:PutObject, s3:DeleteObject and s3:ListBucket on the table's location",
    ),
    (
        re.compile(
            r"(ClassNotFound|NoClassDefFound)\w*:? (org[./]apache[./]iceberg[./]aws|software[./]amazon[./]awssdk)"
        ),
        lambda m: (
            "Iceberg's GlueCatalog and S3FileIO need the AWS SDK v2 on Spark's classpath: add %s to spark.jars "
            "(EMR's runtime has it when Iceberg is enabled; local mode adds it for a glue catalog or spark.local_s3)"
            % _coordinates(tuple(iceberg_aws()))
        ),
    ),
    (
        re.compile(r'No FileSystem for scheme "?(s3[an]?)"?'),
        lambda m: (
            "this Spark's Hadoop has no filesystem for %s:// (EMR's EMRFS has one): add %s to spark.jars and "
            "set spark.hadoop.fs.%s.impl=org.apache.hadoop.fs.s3a.S3AFileSystem (local mode: spark.local_s3: true)"
            % (m.group(1), _coordinates(tuple(hadoop_aws(installed_spark_version()))), m.group(1))
        ),
    ),
    (
        re.compile(r"Unable to load region from any of the providers|Unable to find a region via the region provider"),
        "no AWS Region reached Spark's JVM: set AWS_REGION in the environment Spark starts with, or the catalog "
        "property client.region",
    ),
    (
        re.compile(r"Unable to load (AWS )?credentials from any (of the providers|provider in the chain)"),
        "no AWS credentials reached Spark's JVM: an instance profile or EMR runtime role, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY in the environment Spark starts with",
    ),
    (
        re.compile(r"Insufficient Lake Formation permission\(s\)(?: on (\S+))?"),
        lambda m: (
            "Lake Formation refused the role Spark runs with%s: grant it the table's permissions in Lake Formation "
            "(SELECT and DESCRIBE to read; INSERT, DELETE and ALTER to maintain)"
            % (" on " + m.group(1).rstrip(".,;") if m.group(1) else "")
        ),
    ),
    (
        re.compile(r"EntityNotFoundException: Database (\S+) not found"),
        lambda m: (
            "the Glue database %s does not exist: create it (CREATE NAMESPACE, or Glue's CreateDatabase)"
            % m.group(1).rstrip(".,;")
        ),
    ),
]


def what_is_missing(exc: BaseException) -> Optional[str]:
    """One line naming the setting, jar or permission a failure of Spark on the AWS stack points to (None when it
    points to none of them); AWS's own client errors as `aws.clients.describe_failure` names them."""
    described = describe_failure(exc)
    if described is not None:
        return described
    text = str(exc)
    for pattern, answer in _FOUND:
        found = pattern.search(text)
        if found:
            return answer if isinstance(answer, str) else answer(found)
    return None
