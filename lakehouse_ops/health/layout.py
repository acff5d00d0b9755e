"""How a table is laid out and configured, as health reports it: its sort order, its partition spec, and the
table properties that differ from what its policy wants."""

from typing import Any, Dict, List, Mapping, Optional


def sort_terms(table: Any) -> List[str]:
    order = table.sort_order()
    schema = table.schema()
    terms = []
    for f in order.fields:
        name = schema.find_column_name(f.source_id)
        transform = type(f.transform).__name__
        expr = name if transform == "IdentityTransform" else "%s(%s)" % (str(f.transform), name)
        terms.append("%s %s %s" % (expr, f.direction.name.upper(), f.null_order.name.upper().replace("_", " ")))
    return terms


def spec_terms(table: Any) -> List[str]:
    schema = table.schema()
    return ["%s(%s)" % (str(f.transform), schema.find_column_name(f.source_id)) for f in table.spec().fields]


def property_drift(actual: Mapping[str, str], desired: Mapping[str, str]) -> Dict[str, Dict[str, Optional[str]]]:
    return {
        key: {"actual": actual.get(key), "expected": value}
        for key, value in desired.items()
        if actual.get(key) != value
    }
