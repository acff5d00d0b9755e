"""Another writer, in its own process: appends to a table continuously until told to stop.

    python tests/writer_process.py CONFIG TABLE TAG LEDGER STOPFILE [SECONDS_BETWEEN_COMMITS]

Each commit appends ROWS rows with customer_id = TAG and bytes_sent = commit * ROWS + i (unique per writer).
The commit number is written to LEDGER only after the append returned, so the ledger lists exactly the commits
the writer knows it made; the test checks each of those rows is in the table once. Any failure exits 1.
"""

import os
import sys
import time

ROWS = 50


def main(config_path, table, tag, ledger, stop_file, pause="0.5"):
    from lakehouse_ops.config import load_config
    from lakehouse_ops.engine import build_session
    from lakehouse_ops.sqltext import table_ref

    config = load_config(config_path)
    spark = build_session(config)
    ref = table_ref(config.catalog.name, table)
    commit = 0
    with open(ledger, "a") as out:
        while not os.path.exists(stop_file):
            spark.range(ROWS).selectExpr(
                "TIMESTAMP '2024-05-01 12:00:00' + make_interval(0, 0, 0, 0, 0, 0, id) AS event_time",
                "'%s' AS customer_id" % tag,
                "'edge-w' AS provider",
                "200 AS status",
                "%d + id AS bytes_sent" % (commit * ROWS),
                "'/w' AS url",
            ).coalesce(1).writeTo(ref).append()
            out.write("%d\n" % commit)
            out.flush()
            os.fsync(out.fileno())
            commit += 1
            time.sleep(float(pause))
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
