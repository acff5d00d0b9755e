"""Which orphan candidates removal may take: only under the table's own directories, and only keys its checks,
moves and deletes address as they are spelled."""

from lakehouse_ops.maintenance.orphan_lists import own_candidates

OWN = ["s3://b/wh/t/data", "s3://b/wh/t/metadata"]


def test_keys_the_checks_would_tidy_into_another_key_are_left_and_named():
    taken = ["s3://b/wh/t/data/a.parquet", "s3://b/wh/t/data/day=1/.b.parquet", "s3://b/wh/t/metadata/x..y.avro"]
    odd = [
        "s3://b/wh/t/data/a//b.parquet",  # S3 keeps both slashes; the checks would look at data/a/b.parquet
        "s3://b/wh/t/data/./c.parquet",
        "s3://b/wh/t/data/x/../y.parquet",
        "s3://b/wh/t/data/a.parquet#copy",  # S3FileIO reads `#` and `?` as the end of the key
        "s3://b/wh/t/data/a.parquet?versionId=1",
        "s3://b/wh/t/other/z.parquet",  # not the table's own directory
    ]
    kept, said = own_candidates(taken + odd, OWN)
    assert kept == taken
    assert said["foreign_files_left"]["files"] == len(odd) and "`//`" in said["foreign_files_left"]["reason"]


def test_local_paths_in_every_spelling_are_taken():
    own = ["file:/tmp/wh/t/data", "/tmp/wh/t/data"]
    paths = ["file:/tmp/wh/t/data/a.parquet", "file:///tmp/wh/t/data/b.parquet", "/tmp/wh/t/data/c.parquet"]
    assert own_candidates(paths, own)[0] == paths
