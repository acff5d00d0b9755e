"""DataFrames from values the driver holds (candidate lists, paths to check): through Arrow when pandas is there
(100,000 paths: a fraction of a second), else row by row through Python pickling (seconds)."""

from typing import Any, Dict, List, Mapping, Sequence


def frame(spark: Any, columns: Mapping[str, Sequence[Any]], ddl: str) -> Any:
    """A DataFrame of `columns` ({name: values}, all of one length; strings and integers) with the schema `ddl`."""
    names = list(columns)
    try:
        import pandas as pd
    except ImportError:
        rows: List[Any] = list(zip(*(columns[n] for n in names)))
        return spark.createDataFrame(rows, ddl)
    key = "spark.sql.execution.arrow.pyspark.enabled"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        return spark.createDataFrame(pd.DataFrame({n: list(columns[n]) for n in names}), ddl)
    finally:
        spark.conf.set(key, before)


def scan_metrics(df: Any) -> Dict[str, int]:
    """Iceberg's scan metrics of an executed DataFrame ({metric: value} summed over its table scans, e.g.
    `resultDataFiles`, `skippedDataFiles`, `scannedDataManifests`): what a lookup really read."""
    out: Dict[str, int] = {}
    pending = [df._jdf.queryExecution().executedPlan()]
    while pending:
        node = pending.pop()
        name = node.nodeName()
        if name == "AdaptiveSparkPlan":  # adaptive execution: the final plan, stages unwrapped
            pending.append(node.executedPlan())
            continue
        if name.endswith("QueryStage"):
            pending.append(node.plan())
            continue
        children = node.children()
        pending.extend(children.apply(i) for i in range(children.size()))
        if not name.startswith("BatchScan"):
            continue
        metrics = node.metrics().iterator()
        while metrics.hasNext():
            pair = metrics.next()
            out[pair._1()] = out.get(pair._1(), 0) + int(pair._2().value())
    return out
