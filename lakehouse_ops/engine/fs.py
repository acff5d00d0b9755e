"""File checks through Hadoop's FileSystem in the Spark JVM: the same view of s3://, s3a:// and file: that
Spark's readers and Iceberg's procedures have (EMRFS on EMR)."""

from collections import namedtuple
from typing import Any, List, Optional, Tuple

# uri: the file's qualified path as Hadoop spells it (what Spark's _metadata.file_path reports).
FileInfo = namedtuple("FileInfo", "size mtime_ms uri")


def hadoop_path(spark: Any, path: str) -> Tuple[Any, Any]:
    """(Hadoop Path, its FileSystem) in the Spark JVM."""
    jvm = spark._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath, jpath.getFileSystem(spark._jsc.hadoopConfiguration())


def stat(spark: Any, path: str) -> Optional[FileInfo]:
    """FileInfo(size, modification time in ms, qualified uri) of a file, or None if it does not exist."""
    from py4j.protocol import Py4JJavaError

    jpath, fs = hadoop_path(spark, path)
    try:
        status = fs.getFileStatus(jpath)
    except Py4JJavaError as exc:
        if "FileNotFoundException" in str(exc.java_exception.getClass().getName()):
            return None
        raise
    return FileInfo(status.getLen(), status.getModificationTime(), status.getPath().toUri().toString())


def list_files(spark: Any, location: str) -> List[Tuple[str, int, int]]:
    """Every file under `location` (recursively): [(qualified uri, size, modification time in ms)]."""
    from py4j.protocol import Py4JJavaError

    jpath, fs = hadoop_path(spark, location)
    try:
        iterator = fs.listFiles(jpath, True)
    except Py4JJavaError as exc:
        if "FileNotFoundException" in str(exc.java_exception.getClass().getName()):
            return []
        raise
    out = []
    while iterator.hasNext():
        status = iterator.next()
        out.append((status.getPath().toUri().toString(), status.getLen(), status.getModificationTime()))
    return out
