"""Scaled z-order (pure parts): each column to a quantile bucket, the buckets' bits interleaved; the plan."""

import pytest

from lakehouse_ops.maintenance import compaction, zorder

from test_planning import health, part, policy


def _evaluate(expression, values):
    """The z-value SQL evaluated in Python for bucket values given by name (only shiftleft/shiftright/&/+)."""
    text = expression
    for name, value in values.items():
        text = text.replace(name, str(value))
    text = text.replace("shiftleft", "_shl").replace("shiftright", "_shr")
    return eval(text, {"_shl": lambda v, n: v << n, "_shr": lambda v, n: v >> n})


def test_bits_interleave_with_the_first_column_highest():
    expression = zorder.zvalue_sql(["A", "B"])
    assert _evaluate(expression, {"A": 0, "B": 0}) == 0
    assert _evaluate(expression, {"A": 1, "B": 0}) == 0b10
    assert _evaluate(expression, {"A": 0, "B": 1}) == 0b01
    assert _evaluate(expression, {"A": 0b11, "B": 0b01}) == 0b1011
    top = (1 << zorder.BITS) - 1
    assert _evaluate(expression, {"A": top, "B": top}) == (1 << (2 * zorder.BITS)) - 1


def test_ranks_and_numbers():
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
