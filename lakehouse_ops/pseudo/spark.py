"""Pseudonymize or re-identify DataFrame columns, per partition: through the service (ServiceSettings) or with
the same algorithm inside the executors (InExecutorSettings); both settings models are the config's own
(lakehouse_ops.config.pseudo).

Each partition is streamed as Arrow record batches (never materialised whole). Per batch and column, the distinct
non-null values not already known to the partition are sent in requests of `batch_size` values, with up to
`max_concurrent_requests` requests in flight, the next batches' calls sent while a batch waits for its last
answers (pipeline.py); the answers replace the values through a vectorised lookup; nulls stay null. Deterministic
answers are remembered for the rest of the partition (bounded), so a value repeated across the partition costs one
lookup. Partitions x calls per partition never exceed `max_total_concurrency` (fan_out). Any failure fails the
task and so the job: nothing half-converted is ever written (fail closed). Works in batch jobs and inside
Structured Streaming `foreachBatch`.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

from lakehouse_ops.config.pseudo import InExecutorSettings, ServiceSettings
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.pseudo.pipeline import ServiceConverter, pipelined

Settings = Union[ServiceSettings, InExecutorSettings]


class LocalCipherClient:
    """The client interface over the cipher itself (what the service would answer, computed here); `vector`
    converts whole Arrow arrays of deterministic values at once."""

    def __init__(self, keyring: Any, version: Optional[int] = None) -> None:
        from lakehouse_ops.pseudo.cipher import Cipher
        from lakehouse_ops.pseudo.vectorized import VectorCipher

        self.cipher = Cipher(keyring)
        self.vector = VectorCipher(keyring)
        self.version = version  # tokens are made under this key version (None: the keyring's current)

    def pseudonymize(self, values: List[str], deterministic: bool = True) -> List[str]:
        return [self.cipher.pseudonymize(v, deterministic, self.version) for v in values]

    def reidentify(self, tokens: List[str]) -> List[str]:
        return [self.cipher.reidentify(t) for t in tokens]


def make_client(settings: Settings) -> Any:
    """The client `settings` describe: the service over HTTP, or the cipher itself (in-executor mode)."""
    from lakehouse_ops.pseudo import keys

    if isinstance(settings, InExecutorSettings):
        keyring = keys.keyring_for(settings.keys_secret, settings.key_file, settings.key_version)
        return LocalCipherClient(keyring, settings.key_version)
    from lakehouse_ops.pseudo.client import client_for

    api_key = keys.api_key(env_var=settings.api_key_env, secret_id=settings.api_key_secret)
    return client_for(
        settings.url,
        api_key,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_retries=settings.max_retries,
        max_retry_seconds=settings.max_retry_seconds,
        max_in_flight=settings.max_concurrent_requests,
    )


def _vector_convert(client: Any, values: Any, direction: str) -> Any:
    """In-executor, deterministic: every distinct value of the batch converted in a few vectorised AES calls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    distinct = pc.unique(pc.drop_null(values))
    if direction == "pseudonymize":
        answers = client.vector.pseudonymize_array(distinct, client.version)
    else:
        answers, others = client.vector.reidentify_array(distinct)
        if others:  # randomized tokens: one at a time
            fixed = answers.to_pylist()
            for i, token in zip(others, client.reidentify([distinct[i].as_py() for i in others])):
                fixed[i] = token
            answers = pa.array(fixed, pa.string())
    return pc.take(answers, pc.index_in(values, value_set=distinct))


def convert_batches(
    batches: Iterable[Any],
    columns: List[str],
    settings: Settings,
    direction: str,
    deterministic: bool = True,
    client: Any = None,
) -> Iterator[Any]:
    """The per-partition function: Arrow record batches in, the same batches with `columns` converted out."""

    client = client or make_client(settings)
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_requests) as pool:
        if getattr(client, "vector", None) is not None and (deterministic or direction == "reidentify"):

            def start(column: str, values: Any) -> Any:
                return _vector_convert(client, values, direction)

            yield from pipelined(batches, columns, start, lambda column, converted: converted)
            return
        if direction == "pseudonymize":

            def call(chunk: List[str]) -> List[str]:
                return list(client.pseudonymize(chunk, deterministic))
        else:

            def call(chunk: List[str]) -> List[str]:
                return list(client.reidentify(chunk))

        remember = direction == "reidentify" or deterministic
        converter = ServiceConverter(call, settings.batch_size, remember, pool)
        yield from pipelined(batches, columns, converter.start, converter.finish)


def fan_out(partitions: int, cores: int, settings: Settings) -> Tuple[int, int]:
    """(partitions, calls in flight per partition) so that their product never exceeds max_total_concurrency (the
    service is never asked for more than it allows, so it never throttles the job), while the cluster's cores stay
    busy: fewer calls per partition before fewer partitions than cores."""
    total, per = settings.max_total_concurrency, min(settings.max_concurrent_requests, settings.max_total_concurrency)
    if partitions * per <= total:
        return partitions, per
    keep = max(1, total // per)
    busy = min(partitions, cores, total)
    if keep < busy:
        return busy, max(1, total // busy)
    return keep, per


def _apply(df: Any, columns: Iterable[str], settings: Settings, direction: str, deterministic: bool) -> Any:
    from pyspark.sql.types import StringType

    columns = list(columns)
    fields = {f.name: f.dataType for f in df.schema.fields}
    for column in columns:
        if column not in fields:
            raise ConfigError("column %r is not in the DataFrame (columns: %s)" % (column, ", ".join(fields)))
        if not isinstance(fields[column], StringType):
            raise ConfigError(
                "column %r is %s; only string columns can be pseudonymized (cast it first)"
                % (column, fields[column].simpleString())
            )
    partitions, per_partition_calls = fan_out(
        df.rdd.getNumPartitions(), df.sparkSession.sparkContext.defaultParallelism, settings
    )
    if partitions < df.rdd.getNumPartitions():
        df = df.coalesce(partitions)
    if per_partition_calls != settings.max_concurrent_requests:
        settings = settings.model_copy(update={"max_concurrent_requests": per_partition_calls})

    def per_partition(
        batches: Iterable[Any],
    ) -> Iterator[Any]:  # the settings model travels to the executors as it is (pickled)
        return convert_batches(batches, columns, settings, direction, deterministic)

    return df.mapInArrow(per_partition, df.schema)


def pinned(settings: Settings) -> Settings:
    """In-executor settings with the key version every executor is to use: the keyring's current as the driver
    reads it now (a job pins it once per batch, so tokens of one batch never mix versions). Service settings as
    they are: the service decides."""
    if isinstance(settings, InExecutorSettings) and settings.key_version is None:
        from lakehouse_ops.pseudo import keys

        current = keys.keyring_for(settings.keys_secret, settings.key_file).current
        return settings.model_copy(update={"key_version": current})
    return settings


def token_version(column: Any) -> Any:
    """The key version a token was made under (its first byte), as a Spark column; null for a null token."""
    from pyspark.sql import functions as F

    return F.conv(F.hex(F.substring(F.unbase64(column), 1, 1)), 16, 10).cast("int")


def rekey(tokens: Any, column: str, settings: Settings) -> Any:
    """A DataFrame (old STRING, new STRING): each distinct token of `column` in `tokens`, and the deterministic
    token of the same value under the settings' key version. Re-identified and pseudonymized again within one
    executor function, so no plaintext leaves it (needs a service key allowed to re-identify, or the keys)."""
    from pyspark.sql import functions as F

    distinct = tokens.select(F.col(column).alias("old")).where(F.col("old").isNotNull()).distinct()

    def per_partition(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        client = make_client(settings)
        for batch in batches:
            for plain in convert_batches([batch], ["old"], settings, "reidentify", True, client):
                for new in convert_batches([plain], ["old"], settings, "pseudonymize", True, client):
                    yield pa.RecordBatch.from_arrays([batch.column(0), new.column(0)], names=["old", "new"])

    return distinct.mapInArrow(per_partition, "old STRING, new STRING")


def pseudonymize(df: Any, columns: Iterable[str], settings: Settings, deterministic: bool = True) -> Any:
    """`df` with `columns` replaced by pseudonyms from the service; same schema; nulls stay null."""
    return _apply(df, columns, settings, "pseudonymize", deterministic)


def reidentify(df: Any, columns: Iterable[str], settings: Settings) -> Any:
    """`df` with pseudonym `columns` replaced by the original values; same schema."""
    return _apply(df, columns, settings, "reidentify", True)


__all__ = [
    "ServiceSettings",
    "InExecutorSettings",
    "LocalCipherClient",
    "make_client",
    "convert_batches",
    "pinned",
    "token_version",
    "rekey",
    "pseudonymize",
    "reidentify",
]
