"""The API key the executors read from their environment is hidden wherever Spark shows its settings (UI,
event log, logged configuration), as Spark's own redaction hides passwords."""

import pytest

from lakehouse_ops.engine.session import session_conf

from conftest import PSEUDO_API_KEY, make_config

pytestmark = [pytest.mark.spark, pytest.mark.fast]


def test_spark_redacts_the_pseudonymization_api_key(spark, warehouse):
    jvm = spark._jvm
    conf = spark._jsc.sc().conf()
    pairs = jvm.java.util.ArrayList()
    for key in ("spark.executorEnv.LAKEHOUSE_OPS_PSEUDO_API_KEY", "spark.app.name"):
        pairs.add(jvm.scala.Tuple2(key, conf.get(key)))
    seq = jvm.scala.collection.JavaConverters.asScalaBuffer(pairs).toSeq()
    shown = jvm.org.apache.spark.util.Utils.redact(conf, seq)  # what Spark's UI and event log show
    values = {shown.apply(i)._1(): shown.apply(i)._2() for i in range(shown.size())}
    assert values["spark.executorEnv.LAKEHOUSE_OPS_PSEUDO_API_KEY"] != PSEUDO_API_KEY
    assert "redacted" in values["spark.executorEnv.LAKEHOUSE_OPS_PSEUDO_API_KEY"]
    assert values["spark.app.name"] == "lakehouse-ops"
    # A submitted run (EMR steps, EMR Serverless job runs) starts from the same settings.
    assert "api[._-]?key" in session_conf(make_config(warehouse), mode="cluster")["spark.redaction.regex"]
