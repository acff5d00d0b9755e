"""A failure on the AWS stack names what is missing: the permission S3 refused, the Hadoop filesystem a Spark
lacks for s3://. Glue + S3FileIO on moto; refusals from a proxy in front of it, as S3 answers a role without the
permission."""

import pytest
from slowdown import SlowDownProxy

from lakehouse_ops.engine.diagnose import what_is_missing
from lakehouse_ops.runner import MaintenanceRunner

pytestmark = pytest.mark.spark


def test_a_commit_s3_refuses_names_the_permission(spark, glue_lake, moto_server):
    lake = glue_lake
    name = "%s.refused" % lake.namespace
    ref = "%s.%s" % (lake.catalog, name)
    with SlowDownProxy(moto_server, share=0) as proxy:
        spark.conf.set("spark.sql.catalog.%s.s3.endpoint" % lake.catalog, proxy.url)  # before its first use
        spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
        spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % ref)
        for start in range(0, 40, 10):
            spark.sql("INSERT INTO %s SELECT id FROM range(%d, %d)" % (ref, start, start + 10))
        # From here on S3 refuses every PUT of the table's FileIO, as it refuses a role without s3:PutObject.
        proxy.deny = "PUT"
        # The policy's table properties differ from the table's: the action commits a new metadata file.
        report = MaintenanceRunner(lake.config(), spark=spark, only=["properties"]).run([name])
        action = report["tables"][0]["actions"][0]
        assert action["status"] == "failed", action
        assert "s3:PutObject" in action["reason"] and "403" in action["reason"], action["reason"]
        spark.sql("REFRESH TABLE %s" % ref)
        assert spark.sql("SELECT count(*) AS n FROM %s" % ref).collect()[0].n == 40  # nothing changed


def test_reading_s3_without_a_hadoop_filesystem_names_the_jars_and_the_setting(spark, aws_env, no_hadoop_s3):
    with pytest.raises(Exception) as failure:
        spark.read.parquet("s3://lake-nowhere/listing/").collect()
    said = what_is_missing(failure.value)
    assert said is not None and "spark.hadoop.fs.s3.impl=org.apache.hadoop.fs.s3a.S3AFileSystem" in said, said
    assert "org.apache.hadoop:hadoop-aws:3.3.4" in said
