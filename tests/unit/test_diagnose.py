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
        (  # Hadoop S3A and EMRFS (AWS SDK v1)
            "java.nio.file.AccessDeniedException: s3a://b/wh/t/data/x.parquet: getFileStatus on s3a://b/wh/t/data/"
            "x.parquet: com.amazonaws.services.s3.model.AmazonS3Exception: Forbidden (Service: Amazon S3; Status "
            "Code: 403; Error Code: 403 Forbidden; Request ID: 1X)",
            "S3 refused a request (403 Access Denied)",
        ),
        (
            "com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403; "
            "Error Code: AccessDenied; Request ID: 2Y)",
            "s3:GetObject",
        ),
        (  # SDK v2 on a HEAD: no message
            "software.amazon.awssdk.services.s3.model.S3Exception: (Service: S3, Status Code: 403, Request ID: 3Z)",
            "s3:PutObject",
        ),
        (
            "org.apache.hadoop.fs.s3a.auth.NoAuthWithAWSException: No AWS Credentials provided: "
            "com.amazonaws.SdkClientException: Unable to load AWS credentials from any provider in the chain",
            "no AWS credentials reached Spark's JVM",
        ),
        (
            "com.amazonaws.SdkClientException: Unable to find a region via the region provider chain. Must provide "
            "an explicit region in the builder or setup environment to supply a region.",
            "set AWS_REGION",
        ),
        (
            "software.amazon.awssdk.services.glue.model.AccessDeniedException: Insufficient Lake Formation "
            "permission(s) on events (Service: Glue, Status Code: 400, Request ID: 4W)",
            "Lake Formation refused the role Spark runs with on events",
        ),
    ],
)
def test_the_missing_piece_is_named(text, expected):
    said = what_is_missing(RuntimeError(text))
    assert said is not None and expected in said, said


def test_other_failures_name_nothing():
    assert what_is_missing(RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] The table `x`.`y` cannot be found")) is None
    assert what_is_missing(ValueError("cust-00042 is not a number")) is None


def test_a_403_inside_a_key_is_not_a_refusal():
    """pyarrow's errors quote the key: `part-00403.parquet` throttled, or an unreachable endpoint, is not a
    refused request; a refused HEAD (no body, so no error code) is."""
    import botocore.exceptions

    slow = OSError(
        "When reading information for key 'wh/t/data/part-00403.parquet' in bucket 'b': AWS Error "
        "SLOW_DOWN during HeadObject operation: Please reduce your request rate."
    )
    assert what_is_missing(slow) is None
    gone = OSError(
        "When reading key 'wh/t/metadata/00001-9c403e.metadata.json': AWS Error NETWORK_CONNECTION during "
        "GetObject operation: curlCode: 7, Could not connect to server"
    )
    assert what_is_missing(gone).startswith("cannot reach S3")
    head = OSError(
        "When reading information for key 'k' in bucket 'b': AWS Error UNKNOWN (HTTP status 403) during "
        "HeadObject operation: No response body."
    )
    assert what_is_missing(head).startswith("AWS refused an S3 request")
    refused = botocore.exceptions.ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")
    assert what_is_missing(refused).startswith("AWS refused the request (403)")
