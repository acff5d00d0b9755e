"""File checks through Hadoop's FileSystem in the Spark JVM: the same view of s3://, s3a:// and file: that
Spark's readers and Iceberg's procedures have (EMRFS on EMR)."""


def hadoop_path(spark, path):
    jvm = spark._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath, jpath.getFileSystem(spark._jsc.hadoopConfiguration())


def stat(spark, path):
    """(size, modification time in ms) of a file, or None if it does not exist."""
    from py4j.protocol import Py4JJavaError
    jpath, fs = hadoop_path(spark, path)
    try:
        status = fs.getFileStatus(jpath)
    except Py4JJavaError as exc:
        if "FileNotFoundException" in str(exc.java_exception.getClass().getName()):
            return None
        raise
    return status.getLen(), status.getModificationTime()
