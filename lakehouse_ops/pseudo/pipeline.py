"""Converting one partition's Arrow batches, pipelined: the calls for the values of the next LOOKAHEAD batches are
sent while the current batch waits for its last answers, so a partition never idles on one batch's slowest call
(or on a throttled call's Retry-After). Batches come out in the order they came in.

Per column, the distinct non-null values of a batch that are neither known nor already asked for are sent in
requests of `batch_size` values through the pool (its width is the calls in flight). Deterministic answers are
remembered for the rest of the partition (bounded: past MAX_REMEMBERED the oldest half is forgotten; a value
forgotten before its batch is finished is asked for again). Only the partition's own thread touches the memory;
the pool's threads only make calls. An answer of the wrong length fails the batch (fail closed).
"""

import itertools
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Sequence, Tuple

LOOKAHEAD = 2
MAX_REMEMBERED = 500000  # answers a partition remembers per column (bounded memory)

Call = Callable[[List[str]], List[str]]
Chunks = List[Tuple[List[str], "Future[List[str]]"]]


def checked(call: Call, chunk: List[str]) -> List[str]:
    answer = list(call(chunk))
    if len(answer) != len(chunk):  # fail closed: never pair a value with another value's answer
        from lakehouse_ops.pseudo.client import PseudoServiceError

        raise PseudoServiceError(
            "the pseudonymization client answered %d values for %d sent" % (len(answer), len(chunk))
        )
    return answer


def convert_values(call: Call, values: List[str], batch_size: int, pool: ThreadPoolExecutor) -> List[str]:
    """Answers for `values` (distinct strings), asked in chunks of batch_size, concurrently."""
    out: List[str] = []
    for _, future in _submit(call, values, batch_size, pool):
        out.extend(future.result())
    return out


def _submit(call: Call, values: List[str], batch_size: int, pool: ThreadPoolExecutor) -> Chunks:
    chunks = [values[i : i + batch_size] for i in range(0, len(values), batch_size)]
    return [(chunk, pool.submit(checked, call, chunk)) for chunk in chunks]


def forget_oldest(cache: Dict[str, str]) -> None:
    """Keep a partition's memory bounded: when over the limit, the oldest half is forgotten."""
    if len(cache) > MAX_REMEMBERED:
        for key in list(itertools.islice(iter(cache), len(cache) // 2)):
            del cache[key]


class ServiceConverter:
    """start(column, values) sends the calls a batch's column needs; finish(column, started) gives its converted
    array once they are answered."""

    def __init__(self, call: Call, batch_size: int, remember: bool, pool: ThreadPoolExecutor) -> None:
        self.call, self.batch_size, self.remember, self.pool = call, batch_size, remember, pool
        self.known: Dict[str, Dict[str, str]] = {}
        self.asked: Dict[str, Dict[str, bool]] = {}  # per column: values in calls not yet finished

    def start(self, column: str, values: Any) -> Tuple[Any, Any, List[str], Chunks]:
        import pyarrow.compute as pc

        distinct = pc.unique(pc.drop_null(values))
        keys = distinct.to_pylist()
        if not self.remember:
            return values, distinct, keys, _submit(self.call, keys, self.batch_size, self.pool)
        cache, asked = self.known.setdefault(column, {}), self.asked.setdefault(column, {})
        # Set and map operations run in C: no Python loop per value.
        missing = list(itertools.filterfalse(asked.__contains__, itertools.filterfalse(cache.__contains__, keys)))
        asked.update(dict.fromkeys(missing, True))
        return values, distinct, keys, _submit(self.call, missing, self.batch_size, self.pool)

    def finish(self, column: str, started: Tuple[Any, Any, List[str], Chunks]) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        values, distinct, keys, chunks = started
        if not self.remember:
            answers = [a for _, future in chunks for a in future.result()]
        else:
            cache, asked = self.known[column], self.asked[column]
            for chunk, future in chunks:
                cache.update(zip(chunk, future.result()))
                for value in chunk:
                    asked.pop(value, None)
            # Asked for by an earlier batch (finished first, so known now) or forgotten since: asked again.
            again = list(itertools.filterfalse(cache.__contains__, keys))
            if again:
                cache.update(zip(again, convert_values(self.call, again, self.batch_size, self.pool)))
            answers = list(map(cache.__getitem__, keys))
            forget_oldest(cache)
        return pc.take(pa.array(answers, type=pa.string()), pc.index_in(values, value_set=distinct))


def pipelined(
    batches: Iterable[Any], columns: Sequence[str], start: Callable[[str, Any], Any], finish: Callable[[str, Any], Any]
) -> Iterator[Any]:
    """The batches with `columns` converted, each started LOOKAHEAD batches before it is finished."""
    import pyarrow as pa

    pending: Deque[Tuple[Any, Dict[str, Any], Dict[str, Any]]] = deque()

    def done() -> Any:
        batch, arrays, started = pending.popleft()
        for column in columns:
            arrays[column] = finish(column, started[column])
        return pa.RecordBatch.from_arrays([arrays[n] for n in batch.schema.names], names=batch.schema.names)

    for batch in batches:
        arrays = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
        pending.append((batch, arrays, {column: start(column, arrays[column]) for column in columns}))
        if len(pending) > LOOKAHEAD:
            yield done()
    while pending:
        yield done()
