"""Client of the pseudonymization service contract (see service.py and the AWS sample it follows).

One HTTP session per process with keep-alive; connect and read timeouts; retries with exponential backoff and
full jitter on 429, 5xx, timeouts and connection errors (the project's one RetryPolicy; a `Retry-After` header
is honoured), bounded in count and in total time. Calls in flight adapt to throttling (AdaptiveLimit: halved on
a 429, raised by one after as many answers as the limit without one), so a throttled service sees fewer calls
instead of retry storms. A response of the wrong length or with null entries is an error. Errors and logs name
endpoints, counts and statuses, never values.
"""

import datetime
import email.utils
import json
import threading
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional

from lakehouse_ops.errors import LakehouseOpsError
from lakehouse_ops.logs import get_logger
from lakehouse_ops.retry import RetriesExhausted, RetryPolicy

log = get_logger("pseudo.client")
RETRY_STATUSES = frozenset([429, 500, 502, 503, 504])
MAX_REQUEST_BYTES = 6 * 1024 * 1024


class PseudoServiceError(LakehouseOpsError):
    """The service did not give a usable answer (after retries where retrying made sense)."""


class _Busy(Exception):
    """A failure worth another attempt: timeout, connection error, throttling or a 5xx."""

    def __init__(self, problem: str, retry_after: Optional[float] = None) -> None:
        super().__init__(problem)
        self.retry_after = retry_after


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (moment - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


class AdaptiveLimit:
    """Calls in flight, additive increase / multiplicative decrease: starts at `ceiling`; a throttled call halves
    the limit (once per round: calls that were already in flight when it was halved do not halve it again); after
    `limit` answers in a row without throttling it grows by one, up to `ceiling`. Once the limit that drew
    throttling is known, growing back to it takes PROBE_ROUNDS times as many answers (each throttled call waits
    out the service's Retry-After, so probing the limit again is costly)."""

    PROBE_ROUNDS = 20

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = self.ceiling
        self.in_flight = 0
        self.lowest = self.ceiling
        self.throttled_at = self.ceiling + 1  # the smallest limit that drew throttling
        self._round = 0
        self._good = 0
        self._cond = threading.Condition()

    def acquire(self) -> int:
        """Wait for a free slot; returns the round the call starts in (give it back to `release`)."""
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait()
            self.in_flight += 1
            return self._round

    def release(self, started_round: int, throttled: bool) -> None:
        with self._cond:
            self.in_flight -= 1
            if throttled:
                self._good = 0
                if started_round == self._round:
                    self.throttled_at = min(self.throttled_at, self.limit)
                    self.limit = max(1, self.limit // 2)
                    self.lowest = min(self.lowest, self.limit)
                    self._round += 1
            else:
                self._good += 1
                rounds = self.PROBE_ROUNDS if self.limit + 1 >= self.throttled_at else 1
                if self._good >= rounds * self.limit and self.limit < self.ceiling:
                    self.limit += 1
                    self._good = 0
            self._cond.notify_all()


class PseudoClient:
    """The service's two endpoints over one keep-alive HTTP session, with retries (Retry-After honoured) and
    answers checked (same length, no nulls)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        connect_timeout: float = 3.05,
        read_timeout: float = 29.0,
        max_retries: int = 6,
        max_retry_seconds: float = 60.0,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 10.0,
        session: Any = None,
        max_in_flight: int = 32,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout = (connect_timeout, read_timeout)
        self.retry = RetryPolicy(
            max_attempts=max_retries + 1,
            base_delay_s=backoff_seconds,
            max_delay_s=max_backoff_seconds,
            max_total_s=max_retry_seconds,
        )
        if session is None:
            session = requests.Session()
            # Retries are ours (they cover POST and bad bodies); the adapter only keeps connections alive.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self.requests = 0
        self.retries = 0
        self.throttled = 0
        self.in_flight = AdaptiveLimit(max_in_flight)

    def pseudonymize(self, values: Iterable[str], deterministic: bool = True) -> List[str]:
        return self._call(
            "/pseudonymization",
            {"deterministic": "true" if deterministic else "false"},
            "identifiers",
            "pseudonyms",
            values,
        )

    def reidentify(self, tokens: Iterable[str]) -> List[str]:
        return self._call("/reidentification", None, "pseudonyms", "identifiers", tokens)

    def _call(
        self, path: str, params: Optional[Mapping[str, str]], in_key: str, out_key: str, values: Iterable[str]
    ) -> List[str]:
        import requests

        sent = list(values)
        body = json.dumps({in_key: sent})
        if len(body) > MAX_REQUEST_BYTES:
            raise PseudoServiceError(
                "a request of %d values is %d bytes, over the service's 6 MB limit; lower "
                "batch_size" % (len(sent), len(body))
            )
        started = time.monotonic()

        def attempt() -> List[str]:
            self.requests += 1
            started_round = self.in_flight.acquire()
            throttled = False
            try:
                response = self.session.post(
                    self.url + path,
                    params=params,
                    data=body,
                    timeout=self.timeout,
                    headers={"x-api-key": self._api_key, "Content-Type": "application/json"},
                )
                throttled = response.status_code == 429
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise _Busy(type(exc).__name__) from None
            finally:
                self.in_flight.release(started_round, throttled)
            if throttled:
                self.throttled += 1
            if response.status_code == 200:
                return self._validate(response, path, out_key, len(sent))
            if response.status_code not in RETRY_STATUSES:
                raise PseudoServiceError(
                    "%s answered HTTP %d (not retried): %s" % (path, response.status_code, response.text[:200])
                )
            raise _Busy("HTTP %d" % response.status_code, retry_after_seconds(response.headers.get("Retry-After")))

        def on_retry(number: int, exc: BaseException, delay: float) -> None:
            self.retries += 1
            log.warning(
                "pseudonymization service call failed; retrying",
                extra={"endpoint": path, "attempt": number, "problem": str(exc), "sleep_s": round(delay, 3)},
            )

        try:
            return self.retry.run(
                attempt, lambda exc: isinstance(exc, _Busy), retry_after=_retry_after, on_retry=on_retry
            )
        except RetriesExhausted as exc:
            raise PseudoServiceError(
                "%s failed after %d attempt(s) in %.1f s; last: %s"
                % (path, exc.attempts, time.monotonic() - started, exc.last)
            ) from None

    @staticmethod
    def _validate(response: Any, path: str, out_key: str, expected: int) -> List[str]:
        try:
            out = response.json()[out_key]
        except (ValueError, KeyError, TypeError):
            raise PseudoServiceError("%s answered 200 without a JSON %r list" % (path, out_key)) from None
        if not isinstance(out, list) or len(out) != expected:
            raise PseudoServiceError(
                "%s answered %s values for %d sent"
                % (path, len(out) if isinstance(out, list) else "no list of", expected)
            )
        nulls = sum(1 for v in out if v is None)
        if nulls:
            raise PseudoServiceError(
                "%s could not convert %d of %d values (null in the answer)" % (path, nulls, expected)
            )
        return out


def _retry_after(exc: BaseException) -> Optional[float]:
    return exc.retry_after if isinstance(exc, _Busy) else None


_clients: Dict[Any, PseudoClient] = {}
_clients_lock = threading.Lock()


def client_for(url: str, api_key: str, **options: Any) -> PseudoClient:
    """The process's client (one HTTP session, reused by every partition a Python worker runs)."""
    key = (url, api_key, tuple(sorted(options.items())))
    with _clients_lock:
        if key not in _clients:
            _clients[key] = PseudoClient(url, api_key, **options)
        return _clients[key]
