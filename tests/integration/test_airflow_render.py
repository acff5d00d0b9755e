"""Airflow's templating (jinja2, Airflow's template engine; a test dependency, not the wheel's) applied to the
operator arguments the DAG helpers write."""

import pytest


@pytest.mark.parametrize(
    "value",
    [
        "s3://bucket/reports/maintenance.json",
        "--report=s3://b/x.json",
        "a {{ ds }} b",
        "{% if %}",
        "{# c #}",
        "plain",
        "{% endraw %}",
        'x {% raw %} "q" \\ \u00fc {% endraw %}.json',
    ],
)
def test_step_arguments_render_to_themselves_in_airflow(value):
    """Airflow renders an operator's templated fields with Jinja and reads a string ending in the operator's
    template extensions (EmrAddStepsOperator: .json) as a template file's path: the DAG helper's arguments are
    neither read as files nor changed by rendering (Airflow's own rule, with Airflow's template engine)."""
    import jinja2

    from lakehouse_ops.ship.airflow import jinja_safe

    safe = jinja_safe(value)
    assert not safe.endswith(".json")  # Airflow would look for a template file of that name
    assert jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(safe).render() == value
