"""What a failure of Spark on the AWS stack says is missing, from the text Spark, Iceberg and the AWS SDK give."""

import pytest

from lakehouse_ops.engine.diagnose import what_is_missing

GLUE_DENIED = (
    "An error occurred while calling o87.sql.\n: software.amazon.awssdk.services.glue.model.AccessDeniedException: "
    "User: arn:aws:sts::123456789012:assumed-role/EMR_EC2_DefaultRole/i-0abc is not authorized to perform: "
    "glue:GetTable on resource: arn:aws:glue:us-east-1:123456789012:table/sales/events because no identity-based "
    "policy allows the glue:GetTable action (Service: Glue, Status Code: 400, Request ID: 5a1c)\n\tat software..."
)
NO_SDK = (
    "Cannot initialize Catalog implementation org.apache.iceberg.aws.glue.GlueCatalog: Cannot find constructor for "
    "interface org.apache.iceberg.catalog.Catalog\n\tMissing org.apache.iceberg.aws.glue.GlueCatalog "
    "[java.lang.NoClassDefFoundError: software/amazon/awssdk/services/glue/model/InvalidInputException]"
)


@pytest.mark.parametrize(
    "text, expected",
    [
        (GLUE_DENIED, "AWS refused glue:GetTable on arn:aws:glue:us-east-1:123456789012:table/sales/events"),
        (NO_SDK, "org.apache.iceberg:iceberg-aws-bundle:1.10.1"),
        (
            "java.lang.ClassNotFoundException: org.apache.iceberg.aws.s3.S3FileIO",
            "need the AWS SDK v2 on Spark's classpath",
        ),
        (
            'org.apache.hadoop.fs.UnsupportedFileSystemException: No FileSystem for scheme "s3a"',
            "spark.hadoop.fs.s3a.impl=org.apache.hadoop.fs.s3a.S3AFileSystem",
        ),
        (
            "software.amazon.awssdk.core.exception.SdkClientException: Unable to load region from any of the "
            "providers in the chain software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain",
            "set AWS_REGION",
        ),
        (
            "software.amazon.awssdk.core.exception.SdkClientException: Unable to load credentials from any of the "
            "providers in the chain AwsCredentialsProviderChain",
            "no AWS credentials reached Spark's JVM",
        ),
        (
            "org.apache.iceberg.exceptions.NoSuchNamespaceException: ... EntityNotFoundException: Database sales "
            "not found. (Service: Glue, Status Code: 400)",
            "the Glue database sales does not exist",
        ),
        (
            "software.amazon.awssdk.services.s3.model.S3Exception: Access Denied (Service: S3, Status Code: 403, "
            "Request ID: 1X)",
            "s3:PutObject",
        ),
    ],
)
def test_the_missing_piece_is_named(text, expected):
    said = what_is_missing(RuntimeError(text))
    assert said is not None and expected in said, said


def test_other_failures_name_nothing():
    assert what_is_missing(RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] The table `x`.`y` cannot be found")) is None
    assert what_is_missing(ValueError("cust-00042 is not a number")) is None
