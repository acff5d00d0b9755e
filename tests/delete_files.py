"""Equality delete files for the tests: Spark writes position deletes only (merge-on-read DELETE, UPDATE,
MERGE), while streaming writers (Flink, Kafka Connect) write equality deletes. Written here through Iceberg's own
Java writers in the Spark JVM and committed with a RowDelta, as such a writer commits them."""

import uuid

from lakehouse_ops.engine.tables import jvm_table


def commit_equality_deletes(spark, catalog, table, column, values, partition):
    """Commit one equality delete file deleting rows whose int `column` is in `values`, in the partition given as
    {source column: value} (identity partitions)."""
    jvm = spark._jvm
    gateway = spark.sparkContext._gateway
    iceberg = jvm.org.apache.iceberg
    jtable = jvm_table(spark, catalog, table)
    schema = jtable.schema()
    ids = gateway.new_array(jvm.int, 1)
    ids[0] = schema.findField(column).fieldId()
    names = jvm.java.util.ArrayList()
    names.add(column)
    delete_schema = schema.select(names)
    factory = iceberg.data.GenericAppenderFactory(schema, jtable.spec(), ids, delete_schema, None)
    row = iceberg.data.GenericRecord.create(schema)
    for name, value in partition.items():
        row.setField(name, value)
    key = iceberg.PartitionKey(jtable.spec(), schema)
    key.partition(row)
    path = "%s/data/eq-delete-%s.parquet" % (jtable.location().rstrip("/"), uuid.uuid4().hex)
    output = iceberg.encryption.EncryptedFiles.plainAsEncryptedOutput(jtable.io().newOutputFile(path))
    writer = factory.newEqDeleteWriter(output, iceberg.FileFormat.PARQUET, key)
    for value in values:
        record = iceberg.data.GenericRecord.create(delete_schema)
        record.setField(column, int(value))
        writer.write(record)
    writer.close()
    jtable.newRowDelta().addDeletes(writer.toDeleteFile()).commit()
    spark.sql("REFRESH TABLE %s.%s" % (catalog, table))
    return path
