"""Planning an ingest target's schema evolution (pure: Spark types in, typed changes out)."""

import pytest

pytest.importorskip("pyspark")  # the Python 3.9 check runs the unit tests without pyspark

from pyspark.sql.types import (  # noqa: E402
    ArrayType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from lakehouse_ops.ingest.evolve import CORRUPT, Addition, Widening, plan, statements, type_sql  # noqa: E402


def struct(**fields):
    return StructType([StructField(name, kind) for name, kind in fields.items()])


TARGET = struct(id=LongType(), name=StringType(), point=struct(x=DoubleType()), score=IntegerType())


def test_new_top_level_and_nested_fields_are_added_and_known_ones_are_not():
    files = struct(
        ID=LongType(),  # matches id: names resolve case-insensitively
        name=StringType(),
        point=struct(x=DoubleType(), z=DoubleType()),
        region=StringType(),
        tags=ArrayType(StringType()),
        **{CORRUPT: StringType()},
    )
    changes = plan(TARGET, files, widen=False)
    assert changes.additions == (
        Addition(("point", "z"), "DOUBLE"),
        Addition(("region",), "STRING"),
        Addition(("tags",), "ARRAY<STRING>"),
    )
    assert changes.widenings == ()


def test_declared_wider_types_are_promoted_only_where_iceberg_allows_and_only_when_asked():
    target = struct(a=IntegerType(), b=FloatType(), c=DecimalType(10, 2), d=DecimalType(10, 2), e=StringType())
    files = struct(a=LongType(), b=DoubleType(), c=DecimalType(12, 2), d=DecimalType(12, 4), e=LongType())
    assert plan(target, files, widen=True).widenings == (
        Widening(("a",), "INT", "BIGINT"),
        Widening(("b",), "FLOAT", "DOUBLE"),
        Widening(("c",), "DECIMAL(10,2)", "DECIMAL(12,2)"),
    )
    # JSON's inferred types (every integer a long) say nothing about what the column needs.
    assert plan(target, files, widen=False).empty


def test_nothing_to_do_when_the_files_fit():
    assert plan(TARGET, struct(id=LongType(), point=struct(x=DoubleType())), widen=True).empty


def test_ddl_quotes_names_and_puts_promotions_first():
    files = struct(score=LongType(), **{"odd name`": struct(**{"a b": MapType(StringType(), LongType())})})
    ddl = [sql for _, sql in statements("lake.db.t", plan(TARGET, files, widen=True))]
    assert ddl == [
        "ALTER TABLE lake.db.t ALTER COLUMN `score` TYPE BIGINT",
        "ALTER TABLE lake.db.t ADD COLUMN `odd name``` STRUCT<`a b`: MAP<STRING, BIGINT>>",
    ]
    assert type_sql(struct(x=ArrayType(struct(y=IntegerType())))) == "STRUCT<`x`: ARRAY<STRUCT<`y`: INT>>>"
