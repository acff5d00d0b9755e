"""File checks through Hadoop's FileSystem in the Spark JVM: the same view of s3://, s3a:// and file: that
Spark's readers and Iceberg's procedures have (EMRFS on EMR); on S3 through boto3 where this Spark's Hadoop has no
filesystem for the scheme (aws/objects.py). Moves on S3 always go through boto3 (see `move`). Many files at once
(`stat_many`): one listing per directory instead of one request per file."""

import os
from collections import defaultdict, namedtuple
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterable, List, Optional, Tuple

from lakehouse_ops.aws import objects
from lakehouse_ops.aws.textio import is_s3
from lakehouse_ops.logs import get_logger
from lakehouse_ops.paths import glob_escape, normalize

log = get_logger("engine.fs")

# uri: the file's qualified path as Hadoop spells it (what Spark's _metadata.file_path reports).
FileInfo = namedtuple("FileInfo", "size mtime_ms uri")


def hadoop_path(spark: Any, path: str) -> Tuple[Any, Any]:
    """(Hadoop Path, its FileSystem) in the Spark JVM."""
    jvm = spark._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath, jpath.getFileSystem(spark._jsc.hadoopConfiguration())


_hadoop_has: Dict[str, bool] = {}  # scheme -> whether this Spark's Hadoop has a filesystem for it


def through_boto3(spark: Any, path: str) -> Optional[Any]:
    """An S3 client when `path` is on S3 and this Spark's Hadoop has no filesystem for its scheme (EMR's EMRFS
    has one; a plain Spark without hadoop-aws does not): the operations below then go through boto3."""
    if not is_s3(path):
        return None
    scheme = path.split("://", 1)[0]
    if scheme not in _hadoop_has:
        try:
            spark._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, spark._jsc.hadoopConfiguration())
            _hadoop_has[scheme] = True
        except Exception:  # UnsupportedFileSystemException, or a class that cannot be loaded
            _hadoop_has[scheme] = False
            log.info("no Hadoop filesystem for this scheme: S3 is reached through boto3", extra={"scheme": scheme})
    if _hadoop_has[scheme]:
        return None
    from lakehouse_ops.aws.clients import shared_client

    return shared_client("s3")


def stat(spark: Any, path: str) -> Optional[FileInfo]:
    """FileInfo(size, modification time in ms, qualified uri) of a file, or None if it does not exist."""
    from py4j.protocol import Py4JJavaError

    s3 = through_boto3(spark, path)
    if s3 is not None:
        found = objects.stat(s3, path)
        return FileInfo(found[0], found[1], path) if found else None
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

    s3 = through_boto3(spark, location)
    if s3 is not None:
        return objects.list_files(s3, location)
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


LISTING_THREADS = 16  # directories listed at once (object stores: each listing waits on the network)


def stat_many(spark: Any, paths: Iterable[str]) -> Dict[str, FileInfo]:
    """{path: FileInfo} of those of `paths` that exist, from one listing of each directory that holds some of
    them (local disk: a directory read; S3: ListObjectsV2 pages, which carry sizes and times): no request per
    file. Files on a filesystem this cannot list (hdfs, abfs, ...) are checked one by one through Hadoop."""
    by_dir: Dict[str, List[str]] = defaultdict(list)
    for path in paths:
        by_dir[normalize(path).rsplit("/", 1)[0]].append(path)
    out: Dict[str, FileInfo] = {}
    with ThreadPoolExecutor(max_workers=LISTING_THREADS) as pool:
        listings = dict(zip(by_dir, pool.map(_listed, by_dir)))
    for directory, group in by_dir.items():
        listed = listings[directory]
        for path in group:
            found = stat(spark, path) if listed is None else listed.get(normalize(path).rsplit("/", 1)[1])
            if isinstance(found, FileInfo):
                out[path] = found
            elif found is not None:
                out[path] = FileInfo(found[0], found[1], path)
    return out


def _listed(directory: str) -> Optional[Dict[str, Tuple[int, int]]]:
    """{file name: (size, modification time in ms)} of a directory (normalized path), {} when it does not exist,
    None when it cannot be listed here (another filesystem, or the listing failed: Hadoop then checks)."""
    try:
        return _list_directory(directory)
    except Exception as exc:  # permissions, endpoint, throttling: the per-file checks decide instead
        log.warning("directory not listed; its files are checked one by one", extra={"error": str(exc)[:200]})
        return None


def _list_directory(directory: str) -> Optional[Dict[str, Tuple[int, int]]]:
    if directory.startswith("/"):
        try:
            with os.scandir(directory) as entries:
                return {
                    e.name: (e.stat().st_size, e.stat().st_mtime_ns // 1_000_000)
                    for e in entries
                    if e.is_file(follow_symlinks=False)
                }
        except FileNotFoundError:
            return {}
    if directory.startswith("s3://"):
        from lakehouse_ops.aws.clients import shared_client

        bucket, _, prefix = directory[len("s3://") :].partition("/")
        prefix = prefix + "/" if prefix else ""
        out = {}
        pages = (
            shared_client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if name:
                    out[name] = (int(item["Size"]), int(item["LastModified"].timestamp() * 1000))
        return out
    return None


def head_bytes(spark: Any, path: str, count: int) -> bytes:
    """The first `count` bytes of a file (fewer if it is shorter). Local files are opened through Hadoop's raw
    filesystem: the checksumming one cannot name the checksum file of a name holding ':'."""
    jpath, fs = hadoop_path(spark, path)
    if fs.getScheme() == "file":
        fs = fs.getRawFileSystem()
    stream = fs.open(jpath)
    try:
        return bytes(stream.readNBytes(count))
    finally:
        stream.close()


def table_roots(spark: Any, directories: Iterable[str]) -> List[str]:
    """Those of `directories` that are a table's root: a `metadata/` directory holding `*.metadata.json` files
    (any catalog's Iceberg table, registered or not), checked a few at a time."""

    def check(directory: str) -> Optional[str]:
        s3 = through_boto3(spark, directory)
        if s3 is not None:
            return directory if objects.holds_table_metadata(s3, directory) else None
        # The directory's own name is no pattern (a table named `archive[1]` is a directory of that name).
        jpath, fs = hadoop_path(spark, glob_escape(directory.rstrip("/")) + "/metadata/*.metadata.json")
        found = fs.globStatus(jpath)
        return directory if found is not None and len(found) > 0 else None

    with ThreadPoolExecutor(max_workers=LISTING_THREADS) as pool:
        return sorted(d for d in pool.map(check, sorted(set(directories))) if d is not None)


def read_first_line(spark: Any, path: str, encoding: str = "UTF-8") -> str:
    """A text file's first line, decompressed as Spark's readers decompress it (by the name's suffix: .gz, .bz2,
    ...); '' for an empty file."""
    jvm = spark._jvm
    jpath, fs = hadoop_path(spark, path)
    if fs.getScheme() == "file":
        fs = fs.getRawFileSystem()
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(spark._jsc.hadoopConfiguration()).getCodec(jpath)
    raw = fs.open(jpath)
    try:
        stream = codec.createInputStream(raw) if codec is not None else raw
        line = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, encoding)).readLine()
        return str(line) if line is not None else ""
    finally:
        raw.close()


def move(spark: Any, source: str, target: str) -> bool:
    """Move a file to `target` (its directory created), never over an existing file: True once it is there.
    Object stores copy and delete; a move that fails leaves the source in place."""
    if is_s3(source) and is_s3(target):
        # Through the process's shared client on every runtime: S3's own conditions guard the copy, and a pool of
        # moves backs off together under SlowDown. Where S3 refuses this process's credentials (and Hadoop has a
        # filesystem for S3, as EMRFS is), Hadoop's filesystem moves.
        from lakehouse_ops.aws.clients import describe_failure, shared_client

        s3 = shared_client("s3")
        try:
            return objects.move(s3, source, target)
        except objects.SourceNotDeleted as exc:
            # In both places: Hadoop's filesystem (other credentials, as EMRFS with a runtime role) finishes the
            # move by deleting the source; where there is none, the copy is taken back, so the file stays where it
            # was, once.
            if through_boto3(spark, source) is None:
                log.warning(
                    "S3 refused this process's delete: Hadoop's filesystem deletes the moved source",
                    extra={"error": describe_failure(exc) or str(exc)},
                )
                jsource, fs = hadoop_path(spark, source)
                return bool(fs.delete(jsource, False)) and not fs.exists(jsource)
            _take_back(s3, exc)
            raise
        except Exception as exc:
            reason = describe_failure(exc)
            if reason is None or through_boto3(spark, source) is not None:
                raise
            log.warning("S3 refused this process's move: Hadoop's filesystem moves", extra={"error": reason})
    jsource, fs = hadoop_path(spark, source)
    jtarget, _ = hadoop_path(spark, target)
    if fs.exists(jtarget):
        return False
    fs.mkdirs(jtarget.getParent())
    return bool(fs.rename(jsource, jtarget))


def _take_back(s3: Any, failed: "objects.SourceNotDeleted") -> None:
    """Delete the copy a move made before its source could not be deleted (if S3 lets this process)."""
    from lakehouse_ops.aws.s3 import split_uri

    bucket, key = split_uri(failed.target)
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:  # the same refusal, most likely: the copy stays, and the caller reports the move failed
        log.warning("a moved copy could not be taken back", extra={"error": str(exc)[:200]})


def list_directories(spark: Any, location: str) -> List[str]:
    """The names of the directories directly under `location` ([] when it does not exist)."""
    s3 = through_boto3(spark, location)
    if s3 is not None:
        return objects.list_directories(s3, location)
    jpath, fs = hadoop_path(spark, location)
    if not fs.exists(jpath):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(jpath) if status.isDirectory())


def delete_tree(spark: Any, location: str) -> bool:
    """Delete `location` and everything under it."""
    s3 = through_boto3(spark, location)
    if s3 is not None:
        return objects.delete_tree(s3, location)
    jpath, fs = hadoop_path(spark, location)
    return bool(fs.delete(jpath, True))
