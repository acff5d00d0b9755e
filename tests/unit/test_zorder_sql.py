"""Scaled z-order (pure parts): each column to a quantile bucket, the cells of a quantile grid; the plan."""

import pytest

from lakehouse_ops.maintenance import compaction, zorder

from test_planning import health, part, policy


def test_the_grid_has_about_one_cell_per_file_and_numbers_cells_first_column_first():
    assert zorder.grid(16, 2) == [4, 4]
    assert zorder.grid(10, 2) == [3, 4]
    assert zorder.grid(1, 2) == [1, 1]
    assert zorder.grid(27, 3) == [3, 3, 3]
    assert zorder.grid(7, 1) == [7]
    cell = zorder.cell_sql(["A", "B"], [3, 4])
    assert cell == "CAST(A * 4 + B * 1 AS BIGINT)"
    assert eval(cell.replace("CAST(", "(").replace(" AS BIGINT", ""), {"A": 2, "B": 3}) == 11  # the last cell


def test_ranks_and_numbers():
    assert zorder.finite([3.0, None, float("nan"), 1.0, 3.0, float("inf")]) == [1.0, 3.0]
    assert zorder.finite(None) == []
    assert zorder.rank_sql("x", []) == "0"
    assert zorder.rank_sql("x", [1.0, 5.0]) == "coalesce(IF(x >= 1.0, 1, 0) + IF(x >= 5.0, 1, 0), 0)"
    assert zorder.numeric_sql("ts", "timestamp").startswith("CAST(unix_micros(")
    assert "hex(encode(`customer_id`, 'UTF-8'))" in zorder.numeric_sql("customer_id", "string")
    assert zorder.numeric_sql("d", "date") == "CAST(unix_date(`d`) AS DOUBLE)"


@pytest.mark.parametrize("method, strategy", [("scaled", "zorder-scaled"), ("iceberg", "sort")])
def test_the_plan_carries_the_method(method, strategy):
    layout = {"strategy": "zorder", "zorder_columns": ["ts", "customer"], "zorder_method": method}
    plan = compaction.plan(policy(compaction=layout), health([part("d=1", 10, 10)]), 0)
    assert plan.run and plan.params.strategy == strategy
    if method == "scaled":
        assert plan.params.zorder_columns == ("ts", "customer") and plan.params.sort_order is None
        assert "scaled z-order on ts, customer" in plan.reason and plan.estimated_bytes == 10 * 1024 * 1024
    else:
        assert plan.params.sort_order == "zorder(ts,customer)" and plan.params.zorder_columns == ()


def test_a_v3_table_gets_icebergs_z_order_which_keeps_row_lineage():
    layout = {"strategy": "zorder", "zorder_columns": ["ts", "customer"], "zorder_method": "scaled"}
    plan = compaction.plan(policy(compaction=layout), health([part("d=1", 10, 10)], format_version=3), 0)
    assert plan.run and plan.params.strategy == "sort" and plan.params.sort_order == "zorder(ts,customer)"
    assert "row lineage" in plan.reason
