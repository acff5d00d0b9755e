"""How pyiceberg's S3 FileIO (pyarrow's S3 filesystem) retries: the AWS SDK's default strategy (exponential
backoff with jitter, longer after throttling) with more attempts than pyarrow's three, so a health scan rides out a
burst of S3's 503 SlowDown on a busy prefix. pyiceberg builds it from its class name (`s3.retry-strategy-impl`)."""

from pyarrow.fs import AwsDefaultS3RetryStrategy

from lakehouse_ops.aws.clients import S3_ATTEMPTS

S3_RETRY_PROPERTY = "s3.retry-strategy-impl"
S3_READ_RETRIES = "lakehouse_ops.aws.s3retry.PatientS3Retries"
ATTEMPTS = S3_ATTEMPTS


class PatientS3Retries(AwsDefaultS3RetryStrategy):
    def __init__(self) -> None:
        super().__init__(max_attempts=ATTEMPTS)
