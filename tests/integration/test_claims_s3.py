"""The claim protocol's tests again, on S3 conditional writes served by moto over HTTP."""

import os
import sys

import pytest

from lakehouse_ops.conditional import S3Store

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
import test_claims as local  # noqa: E402  (the same tests, given the S3 store below)


@pytest.fixture
def store(aws_env, tmp_path):
    from lakehouse_ops.aws.clients import client

    assert aws_env
    s3 = client("s3")
    bucket = "claims-%s" % tmp_path.name.lower().replace("_", "-")[:40]
    s3.create_bucket(Bucket=bucket)
    return S3Store("s3://%s/ingest/target" % bucket, s3)


test_claimed_until_expiry_on_s3 = local.test_an_object_is_claimed_by_one_worker_until_its_claim_expires
test_sealed_batch_finished_on_s3 = local.test_an_expired_claim_of_a_sealed_batch_is_finished_not_taken
test_release_on_s3 = local.test_released_claims_can_be_claimed_again_and_a_moved_claim_is_not_released
test_rebind_on_s3 = local.test_rebind_moves_our_claims_to_the_new_batch
