"""The pseudonymize / reidentify jobs end to end, through the CLI, against the reference service."""

import json

import pytest
from chispa import assert_df_equality
from click.testing import CliRunner

from lakehouse_ops.cli import cli

from conftest import CATALOG

pytestmark = pytest.mark.spark


def _config(tmp_path, warehouse, service_url, source, target):
    path = tmp_path / "pseudo.yaml"
    path.write_text(
        json.dumps(
            {
                "catalog": {"name": CATALOG, "type": "hadoop", "warehouse": str(warehouse)},
                "pseudonymization": {
                    "service_url": service_url,
                    "batch_size": 50,
                    "max_retries": 1,
                    "jobs": {
                        "vehicles": {"source": {"table": source}, "target": target, "columns": ["vin", "owner_email"]}
                    },
                },
            }
        )
    )
    return str(path)


def test_pseudonymize_then_reidentify(spark, warehouse, pseudo_service, tmp_path, table_name, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", "test-api-key-0123456789")
    source = spark.range(500).selectExpr(
        "id",
        "concat('WVWZZZ', CAST(id % 120 AS STRING)) AS vin",
        "CASE WHEN id % 9 = 0 THEN NULL ELSE concat('owner', CAST(id % 40 AS STRING), '@example.com') END "
        "AS owner_email",
    )
    src = table_name + "_raw"
    source.writeTo("%s.%s" % (CATALOG, src)).using("iceberg").create()
    config = _config(tmp_path, warehouse, pseudo_service.url, src, table_name)

    result = CliRunner().invoke(cli, ["--config", config, "pseudonymize", "--job", "vehicles", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 500 and report["target"] == table_name
    # The config names no history section: the default table records the run.
    assert report["history"] == {"table": "lakehouse_ops.run_history", "rows": 1}
    recorded = spark.sql(
        "SELECT kind, metrics['rows'] AS rows FROM %s.lakehouse_ops.run_history WHERE table_name = '%s'"
        % (CATALOG, table_name)
    ).collect()
    assert [(r.kind, r.rows) for r in recorded] == [("pseudonymize", 500.0)]
    safe = spark.table("%s.%s" % (CATALOG, table_name))
    assert safe.filter("vin LIKE 'WVWZZZ%' OR owner_email LIKE '%example.com'").count() == 0
    assert safe.filter("owner_email IS NULL").count() == source.filter("owner_email IS NULL").count()

    plain = table_name + "_plain"
    result = CliRunner().invoke(
        cli, ["--config", config, "reidentify", "--job", "vehicles", "--target", plain, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert_df_equality(spark.table("%s.%s" % (CATALOG, plain)), source, ignore_row_order=True, ignore_nullable=True)


def test_service_failure_leaves_the_target_unchanged(
    spark, warehouse, pseudo_service, tmp_path, table_name, monkeypatch
):
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", "test-api-key-0123456789")
    src = table_name + "_raw"
    spark.range(50).selectExpr("id", "CAST(id AS STRING) AS vin", "'x@example.com' AS owner_email").writeTo(
        "%s.%s" % (CATALOG, src)
    ).using("iceberg").create()
    config = _config(tmp_path, warehouse, pseudo_service.url, src, table_name)
    assert CliRunner().invoke(cli, ["--config", config, "pseudonymize", "--job", "vehicles"]).exit_code == 0
    spark.range(50, 60).selectExpr("id", "CAST(id AS STRING) AS vin", "'x@example.com' AS owner_email").writeTo(
        "%s.%s" % (CATALOG, src)
    ).append()  # new rows for the next run to convert
    before = spark.sql("SELECT count(*) n FROM %s.%s.snapshots" % (CATALOG, table_name)).collect()[0].n
    pseudo_service.inject(*(["500"] * 40))
    try:
        result = CliRunner().invoke(cli, ["--config", config, "pseudonymize", "--job", "vehicles"])
    finally:
        pseudo_service._faults.clear()
    assert result.exit_code == 1
    assert "is unchanged: PseudoServiceError: /pseudonymization failed after 2 attempt(s)" in result.output
    spark.sql("REFRESH TABLE %s.%s" % (CATALOG, table_name))
    assert spark.sql("SELECT count(*) n FROM %s.%s.snapshots" % (CATALOG, table_name)).collect()[0].n == before
    assert spark.table("%s.%s" % (CATALOG, table_name)).filter("vin RLIKE '^[0-9]+$'").count() == 0
    bad = CliRunner().invoke(cli, ["--config", config, "pseudonymize", "--job", "nope"])
    assert bad.exit_code == 2 and "jobs: vehicles" in bad.output


def test_a_scheduled_job_converts_only_what_is_new_and_never_writes_plaintext_into_pseudonyms(
    spark, warehouse, pseudo_service, tmp_path, table_name, monkeypatch
):
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", "test-api-key-0123456789")
    src = table_name + "_raw"

    def rows(start, count):
        return spark.range(start, start + count).selectExpr(
            "id", "concat('VIN', CAST(id AS STRING)) AS vin", "'x@example.com' AS owner_email"
        )

    rows(0, 100).writeTo("%s.%s" % (CATALOG, src)).using("iceberg").create()
    config = _config(tmp_path, warehouse, pseudo_service.url, src, table_name)

    def run(*args):
        result = CliRunner().invoke(cli, ["--config", config] + list(args) + ["--json"])
        return result.exit_code, (json.loads(result.stdout) if result.exit_code == 0 else result.output)

    assert run("pseudonymize", "--job", "vehicles")[1]["rows"] == 100
    code, again = run("pseudonymize", "--job", "vehicles")  # a scheduled rerun: nothing new
    assert code == 0 and again["rows"] == 0 and again["up_to_date"]
    rows(100, 20).writeTo("%s.%s" % (CATALOG, src)).append()
    assert run("pseudonymize", "--job", "vehicles")[1]["rows"] == 20
    target = spark.table("%s.%s" % (CATALOG, table_name))
    assert target.count() == 120 and target.select("id").distinct().count() == 120

    # Re-identification: never into the job's own table, nor into any table marked as holding pseudonyms.
    code, said = run("reidentify", "--job", "vehicles", "--target", table_name)
    assert code == 2 and "pseudonymized table" in said
    code, said = run("reidentify", "--job", "vehicles", "--target", "%s.%s" % (CATALOG, table_name.upper()))
    assert code == 2 and "pseudonymized table" in said  # a name in another case is the same table
    code, said = run("reidentify", "--job", "vehicles", "--target", src)
    assert code == 2 and "is the job's source" in said  # the next run would convert the plaintext again
    marked = table_name + "_marked"
    spark.sql("CREATE TABLE %s.%s (id BIGINT) USING iceberg" % (CATALOG, marked))
    spark.sql("ALTER TABLE %s.%s SET TBLPROPERTIES ('lakehouse-ops.pseudonymized-columns'='vin')" % (CATALOG, marked))
    code, said = run("reidentify", "--job", "vehicles", "--target", marked)
    assert code == 2 and "holds pseudonyms" in said
    plain = table_name + "_plain"
    assert run("reidentify", "--job", "vehicles", "--target", plain)[1]["rows"] == 120
    assert run("reidentify", "--job", "vehicles", "--target", plain)[1]["rows"] == 0  # incremental too

    # A job that would write to its own source (its tokens converted again by every run) is refused.
    (tmp_path / "in-place").mkdir()
    in_place = _config(tmp_path / "in-place", warehouse, pseudo_service.url, src, "`%s`" % src.upper())
    result = CliRunner().invoke(cli, ["--config", in_place, "pseudonymize", "--job", "vehicles"])
    assert result.exit_code == 2 and "writes to its own source" in result.output, result.output
    assert spark.table("%s.%s" % (CATALOG, src)).count() == 120
    # Nor one that reads files from inside its target's location (its own data files, spelled another way).
    location = spark.sql("DESCRIBE TABLE EXTENDED %s.%s" % (CATALOG, table_name)).where("col_name = 'Location'")
    inside = json.loads(open(in_place).read())
    inside["pseudonymization"]["jobs"]["vehicles"].update(
        source={"path": location.collect()[0].data_type + "//data/", "format": "parquet"}, target=table_name
    )
    (tmp_path / "in-place" / "pseudo.yaml").write_text(json.dumps(inside))
    result = CliRunner().invoke(cli, ["--config", in_place, "pseudonymize", "--job", "vehicles"])
    assert result.exit_code == 2 and "overlaps its target's location" in result.output, result.output
    assert spark.table("%s.%s" % (CATALOG, table_name)).count() == 120

    # A source changed by more than appends cannot be followed: said, and nothing written.
    spark.sql("DELETE FROM %s.%s WHERE id < 10" % (CATALOG, src))
    code, said = run("pseudonymize", "--job", "vehicles")
    assert code == 1 and "changed by more than appends" in said and "write_mode: overwrite" in said
    assert spark.table("%s.%s" % (CATALOG, table_name)).count() == 120
