"""CloudWatch Embedded Metric Format (EMF): one JSON line per measured thing, written to stderr with the logs
(stdout holds a job's report alone, so `--json` stays one JSON document). Where CloudWatch Logs collects the
driver's stderr (EMR Serverless with CloudWatch logging, the CloudWatch agent on EMR on EC2) each line becomes
metrics to graph and alarm on, with its dimensions.

The document follows the EMF specification: `_aws.Timestamp` (epoch milliseconds), one metric directive with the
namespace, one dimension set (its names are members of the document holding strings) and the metrics (each a
member holding a number), with CloudWatch's units. Values that are not finite numbers are left out."""

import json
import math
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

UNITS = frozenset(
    "Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits Megabits "
    "Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second Gigabytes/Second "
    "Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second Terabits/Second Count/Second "
    "None".split()
)
MAX_METRICS, MAX_DIMENSIONS = 100, 30
Metric = Tuple[str, Any, str]  # name, value, unit


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def document(
    namespace: str,
    dimensions: Mapping[str, str],
    metrics: Sequence[Metric],
    now_ms: int,
    properties: Optional[Mapping[str, Any]] = None,
) -> Optional[Dict[str, Any]]:
    """The EMF document, or None when no metric has a value. A unit outside CloudWatch's, too many metrics or
    dimensions, or a dimension without a text value is a programming error (ValueError)."""
    present: List[Metric] = [m for m in metrics if _number(m[1])]
    if not present:
        return None
    if len(present) > MAX_METRICS or len(dimensions) > MAX_DIMENSIONS:
        raise ValueError("EMF: at most %d metrics and %d dimensions in a document" % (MAX_METRICS, MAX_DIMENSIONS))
    for name, _, unit in present:
        if unit not in UNITS:
            raise ValueError("EMF: metric %s has unit %r, not one of CloudWatch's" % (name, unit))
    for key, value in dimensions.items():
        if not isinstance(value, str) or not value:
            raise ValueError("EMF: dimension %s needs a text value" % key)
    record: Dict[str, Any] = dict(properties or {})
    record.update(dimensions)
    record.update({name: value for name, value, _ in present})
    record["_aws"] = {
        "Timestamp": int(now_ms),
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": [list(dimensions)],
                "Metrics": [{"Name": name, "Unit": unit} for name, _, unit in present],
            }
        ],
    }
    return record


def emit(records: Sequence[Optional[Dict[str, Any]]]) -> int:
    """Write each document as one line on stderr; the number written."""
    written = 0
    for record in records:
        if record is not None:
            sys.stderr.write(json.dumps(record, sort_keys=True, default=str) + "\n")
            written += 1
    sys.stderr.flush()
    return written
