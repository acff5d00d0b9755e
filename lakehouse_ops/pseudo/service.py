"""The reference pseudonymization service: the public AWS sample's contract, implemented safely.

Endpoints (JSON; API key in `x-api-key`):
  POST /pseudonymization?deterministic=true|false   {"identifiers": [...]} -> {"pseudonyms": [...]}
  POST /reidentification                            {"pseudonyms": [...]}  -> {"identifiers": [...]}
Same order and length; a value that cannot be converted comes back as null. Unparseable bodies and unknown paths
get HTTP 500 with a plain-text message (as the sample does), a bad key 403, a body over 6 MB 413.

Unlike the sample: request bodies and values are never logged; API keys are compared in constant time, before
the body is read, and re-identification takes a key of its own (a pseudonymizing job's key cannot re-identify);
there is no cache at all (so none shared between the two directions); keys carry versions (see cipher.py).

Run it locally with `lakehouse-ops pseudo-service`, or deploy `lambda_handler` behind API Gateway. Locally, a
`Profile` makes it answer like API Gateway + Lambda under load (latency with jitter per call, a concurrency limit,
429 with Retry-After past it), so clients and benchmarks meet what they will meet in AWS.
"""

import hmac
import json
import random
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urlparse

from lakehouse_ops.logs import get_logger
from lakehouse_ops.pseudo.cipher import Cipher, Keyring, TokenError

log = get_logger("pseudo.service")
MAX_BODY_BYTES = 6 * 1024 * 1024
Answer = Tuple[int, str, bytes, Dict[str, str]]  # HTTP status, content type, body, extra headers


@dataclass(frozen=True)
class Profile:
    """How the local service behaves under load: each call takes `latency_ms` plus up to `jitter_ms` (uniform);
    over `max_concurrency` calls in flight (0: no limit), a call is refused at once with 429 and a Retry-After of
    `retry_after_s` seconds, as API Gateway does past a Lambda's reserved concurrency."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    max_concurrency: int = 0
    retry_after_s: int = 1


class PseudonymService:
    """Transport-free core: (method, path, query, headers, body) -> (status, content type, body, headers)."""

    def __init__(
        self,
        keyring: Keyring,
        api_key: str,
        faults: Optional[Sequence[str]] = None,
        profile: Optional[Profile] = None,
        reidentify_api_key: Optional[str] = None,
    ) -> None:
        """`api_key` may pseudonymize; `reidentify_api_key` may also re-identify (None: nobody may: a service
        that only pseudonymizes)."""
        from lakehouse_ops.pseudo.vectorized import VectorCipher

        self.cipher = Cipher(keyring)
        self.vector = VectorCipher(keyring)
        self._keys = {
            "pseudonymization": [k.encode("utf-8") for k in (api_key, reidentify_api_key) if k],
            "reidentification": [reidentify_api_key.encode("utf-8")] if reidentify_api_key else [],
        }
        self._faults = list(faults or [])
        self._lock = threading.Lock()
        self.calls = {"pseudonymization": 0, "reidentification": 0}
        self.values = {"pseudonymization": 0, "reidentification": 0}
        self.profile = profile or Profile()
        self.throttled = 0
        self._slots = threading.BoundedSemaphore(self.profile.max_concurrency or 1)

    def use_keys(self, keyring: Keyring) -> None:
        """Take new key material (a rotation): tokens are made under its current version from now on, and every
        version it holds still opens."""
        from lakehouse_ops.pseudo.vectorized import VectorCipher

        cipher, vector = Cipher(keyring), VectorCipher(keyring)
        with self._lock:
            self.cipher, self.vector = cipher, vector

    def inject(self, *faults: str) -> None:
        """Tests: answer the next requests with these faults, in order: '429', '500', '503', 'sleep:<s>',
        'short' (one value fewer), 'null' (a null slot)."""
        with self._lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        """Tests: forget faults injected and not yet served."""
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> Optional[str]:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def refused(self, path: str, headers: Mapping[str, str]) -> Optional[Answer]:
        """403 unless the request's key may use the endpoint at `path` (checked before the body is read: an
        unauthorised caller never has a body parsed); None when it may. Keys compare in constant time."""
        key = (headers.get("x-api-key") or "").encode("utf-8")
        allowed = self._keys.get(path.strip("/"), self._keys["pseudonymization"])
        if not any(hmac.compare_digest(key, k) for k in allowed) or not key:
            return 403, "application/json", b'{"message": "Forbidden"}', {}
        return None

    def handle(
        self, method: str, path: str, query: Mapping[str, List[str]], headers: Mapping[str, str], body: bytes
    ) -> Answer:
        refused = self.refused(path, headers)
        if refused is not None:
            return refused
        limited = self.profile.max_concurrency > 0
        if limited and not self._slots.acquire(blocking=False):
            with self._lock:
                self.throttled += 1
            log.info("request throttled", extra={"limit": self.profile.max_concurrency})
            retry_after = {"Retry-After": str(self.profile.retry_after_s)}
            return 429, "application/json", b'{"message": "Too Many Requests"}', retry_after
        try:
            if self.profile.latency_ms or self.profile.jitter_ms:
                time.sleep((self.profile.latency_ms + random.uniform(0, self.profile.jitter_ms)) / 1000.0)
            return self._answer(method, path, query, body)
        finally:
            if limited:
                self._slots.release()

    def _answer(self, method: str, path: str, query: Mapping[str, List[str]], body: bytes) -> Answer:
        fault = self._next_fault()
        if fault in ("429", "500", "502", "503", "504"):
            return int(fault), "text/plain", b"injected fault", {}
        if fault and fault.startswith("sleep:"):
            time.sleep(float(fault.split(":", 1)[1]))
        if method != "POST" or path not in ("/pseudonymization", "/reidentification"):
            return 500, "text/plain", b"unknown path", {}
        if len(body) > MAX_BODY_BYTES:
            return 413, "application/json", b'{"message": "Request must be smaller than 6291456 bytes"}', {}
        endpoint = path.lstrip("/")
        in_key, out_key = (
            ("identifiers", "pseudonyms") if endpoint == "pseudonymization" else ("pseudonyms", "identifiers")
        )
        try:
            values = json.loads(body.decode("utf-8"))[in_key]
            if not isinstance(values, list):
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return 500, "text/plain", ('request body must be JSON {"%s": [...]}' % in_key).encode(), {}
        deterministic = query.get("deterministic", ["false"])[0].lower() == "true"
        out = self._convert_all(endpoint, values, deterministic)
        if fault == "short" and out:
            out = out[:-1]
        if fault == "null" and out:
            out[0] = None
        with self._lock:
            self.calls[endpoint] += 1
            self.values[endpoint] += len(values)
        log.info("request served", extra={"endpoint": endpoint, "values": len(values)})
        return 200, "application/json", json.dumps({out_key: out}).encode("utf-8"), {}

    def _convert_all(self, endpoint: str, values: List[Any], deterministic: bool) -> List[Optional[str]]:
        """Deterministic requests of strings are converted in one vectorised pass; anything else (randomized
        mode, non-strings, a token that does not authenticate) value by value, with null for what fails."""
        if values and all(isinstance(v, str) for v in values) and (deterministic or endpoint != "pseudonymization"):
            import pyarrow as pa

            try:
                if endpoint == "pseudonymization":
                    tokens: List[Optional[str]] = self.vector.pseudonymize_array(
                        pa.array(values, pa.string())
                    ).to_pylist()
                    return tokens
                answers, others = self.vector.reidentify_array(pa.array(values, pa.string()))
                out: List[Optional[str]] = answers.to_pylist()
                for i in others:
                    out[i] = self._convert(endpoint, values[i], deterministic)
                return out
            except TokenError:
                pass
        return [self._convert(endpoint, v, deterministic) for v in values]

    def _convert(self, endpoint: str, value: Any, deterministic: bool) -> Optional[str]:
        if not isinstance(value, str):
            return None
        try:
            if endpoint == "pseudonymization":
                return self.cipher.pseudonymize(value, deterministic)
            return self.cipher.reidentify(value)
        except TokenError:
            return None


class _Handler(BaseHTTPRequestHandler):
    service: PseudonymService  # set per server class (serve)
    protocol_version = "HTTP/1.1"  # keep-alive

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the client's delayed
        # ACK hold every response back by tens of milliseconds.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self, method: str) -> None:
        url = urlparse(self.path)
        declared = (self.headers.get("Content-Length") or "0").strip()
        length = int(declared) if declared.isascii() and declared.isdigit() else -1
        headers = {k.lower(): v for k, v in self.headers.items()}
        # The key and the size are checked before the body is read; a refused body is never read (the connection
        # is closed after the answer instead).
        early = self.service.refused(url.path, headers)
        if early is None and length < 0:
            early = 400, "application/json", b'{"message": "Content-Length must be a byte count"}', {}
        if early is None and length > MAX_BODY_BYTES:
            early = 413, "application/json", b'{"message": "Request must be smaller than 6291456 bytes"}', {}
        if early is not None:
            self.close_connection = True
            self._answer(*early)
            return
        body = self.rfile.read(length) if length else b""
        try:
            status, content_type, payload, extra = self.service.handle(
                method, url.path, parse_qs(url.query), headers, body
            )
        except Exception as exc:  # answer rather than drop the connection; name the failure, never the values
            log.error("request failed", extra={"error": type(exc).__name__})
            status, content_type, payload, extra = 500, "text/plain", b"internal error", {}
        self._answer(status, content_type, payload, extra)

    def _answer(self, status: int, content_type: str, payload: bytes, extra: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def log_message(self, format: str, *args: Any) -> None:
        # The default handler logs request lines to stderr; paths carry no values, but keep it quiet and uniform.
        log.debug("http %s", self.command)


def serve(service: PseudonymService, host: str = "127.0.0.1", port: int = 0) -> Tuple[ThreadingHTTPServer, str]:
    """Start the service on a thread; returns (server, base URL). Stop with server.shutdown()."""
    handler = type("PseudonymHandler", (_Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="pseudo-service", daemon=True)
    thread.start()
    return server, "http://%s:%d" % (host, server.server_port)


_LAMBDA_SERVICE: Optional[PseudonymService] = None


def lambda_handler(event: Mapping[str, Any], context: Any) -> Dict[str, Any]:
    """API Gateway (REST, proxy integration) entry point. Keys come from Secrets Manager: the key material from the
    secret named by LAKEHOUSE_OPS_PSEUDO_KEYS_SECRET, and the API keys from the one named by
    LAKEHOUSE_OPS_PSEUDO_API_KEYS_SECRET (`{"pseudonymization": "...", "reidentification": "..."}`: the second
    may also pseudonymize; leave it out and nobody may re-identify). The handler checks the key itself: an API
    Gateway usage plan admits a key to every method of a stage, so it cannot keep re-identification apart."""
    global _LAMBDA_SERVICE
    if _LAMBDA_SERVICE is None:
        import os

        from lakehouse_ops.pseudo.keys import keyring_from_secret, secret_json

        keyring = keyring_from_secret(os.environ["LAKEHOUSE_OPS_PSEUDO_KEYS_SECRET"])
        api_keys = secret_json(os.environ["LAKEHOUSE_OPS_PSEUDO_API_KEYS_SECRET"])
        _LAMBDA_SERVICE = PseudonymService(
            keyring, api_key=str(api_keys["pseudonymization"]), reidentify_api_key=api_keys.get("reidentification")
        )
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    query = {k: [v] for k, v in (event.get("queryStringParameters") or {}).items()}
    body = (event.get("body") or "").encode("utf-8")
    status, content_type, payload, extra = _LAMBDA_SERVICE.handle(
        event.get("httpMethod", "POST"), event.get("path", ""), query, headers, body
    )
    return {"statusCode": status, "headers": dict(extra, **{"Content-Type": content_type}), "body": payload.decode()}
