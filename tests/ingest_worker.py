"""An ingest worker for the multi-process tests: what `lakehouse-ops ingest --until-empty --json` does, and with
--kill-at STAGE it kills itself with SIGKILL (like kill -9) when a batch reaches that stage of its protocol."""

import argparse
import os
import signal
import sys


def main(argv=None):
    from lakehouse_ops.ingest.job import STAGES

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--kill-at", choices=STAGES)
    args = parser.parse_args(argv)

    from lakehouse_ops import logs
    from lakehouse_ops.config import load_config
    from lakehouse_ops.errors import LakehouseOpsError
    from lakehouse_ops.ingest.routing import ingest_worker
    from lakehouse_ops.runner.report import to_json

    def on_stage(stage):
        if stage == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    logs.configure()
    try:
        report = ingest_worker(load_config(args.config), on_stage=on_stage).run(until_empty=True)
    except LakehouseOpsError as exc:
        print("ingest_worker: %s" % exc, file=sys.stderr)
        return 1
    print(to_json(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
