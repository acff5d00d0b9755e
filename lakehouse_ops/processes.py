"""Work spread over processes of this interpreter, for reading that is bound by one interpreter (decoding Avro
manifests, parsing table metadata).

Each worker is `python -c` given the parent's import path and one pickled job, and answers with the pickled
result; nothing of the caller's own program is run again (multiprocessing's spawn would re-run a script that has
no `__main__` guard, and fork would copy the caller's threads and open clients).
"""

import pickle
import subprocess
import sys
from typing import Any, List

_WORKER = (
    "import importlib, pickle, sys; stdin = sys.stdin.buffer; sys.path[:0] = pickle.load(stdin); "
    "module, name = pickle.load(stdin); function = getattr(importlib.import_module(module), name); "
    "pickle.dump(function(pickle.load(stdin)), sys.stdout.buffer)"
)


class WorkerFailed(RuntimeError):
    """A worker process did not answer."""


def in_processes(module: str, function: str, jobs: List[Any]) -> List[Any]:
    """`module.function(job)` for each job, each in a process of its own, all at once; the results in order.
    Raises WorkerFailed (or OSError when no process can start): callers then do the work in their own process."""
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in jobs
    ]
    try:
        for proc, job in zip(procs, jobs):
            assert proc.stdin is not None
            pickle.dump(list(sys.path), proc.stdin)
            pickle.dump((module, function), proc.stdin)
            pickle.dump(job, proc.stdin)
            proc.stdin.close()
        results = []
        for proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            if proc.wait() != 0:
                raise WorkerFailed(
                    "a worker process of %s.%s exited with code %s" % (module, function, proc.returncode)
                )
            results.append(pickle.loads(out))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
