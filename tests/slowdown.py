"""A fault-injecting proxy in front of moto's server: S3 requests are answered `503 SlowDown` as S3 does when a
prefix takes more requests than it can, either in bursts that refuse a share of them (seeded: the same seed gives
the same bursts for the same sequence of requests) or above a request rate (`rate`: more than that many S3
requests in the last second are refused, as S3's per-prefix limits do); with `deny` (an HTTP method), S3 requests
of that method are answered `403 AccessDenied`, as for a role without the permission; with `key_errors` (a share),
that share of the keys of each multi-object delete is answered per key with SlowDown and not deleted (the request
itself succeeds, as S3 answers a busy prefix inside a DeleteObjects); everything else is passed through as it
came."""

import base64
import collections
import hashlib
import http.client
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Deque, List, Optional, Tuple
from urllib.parse import urlparse

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request '
    b"rate.</Message><RequestId>slowdown-proxy</RequestId></Error>"
)


REFUSED = b'{"__type": "ValidationException", "message": "Runtime roles are not enabled on this cluster"}'
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>'
    b"<RequestId>slowdown-proxy</RequestId></Error>"
)


class SlowDownProxy:
    def __init__(
        self,
        target: str,
        share: float = 0.3,
        burst: int = 3,
        seed: int = 0,
        rate: Optional[float] = None,
        deny: Optional[str] = None,
        key_errors: float = 0.0,
        refuse_target: Optional[str] = None,
    ) -> None:
        parsed = urlparse(target)
        self.target = (parsed.hostname, parsed.port)
        self.share, self.burst, self.rate, self.deny, self.key_errors = share, burst, rate, deny, key_errors
        self.refuse_target = refuse_target  # a JSON API operation ("ElasticMapReduce.AddJobFlowSteps") refused
        self.key_faults = 0  # keys of multi-object deletes answered SlowDown
        self.recent: Deque[float] = collections.deque()  # when the S3 requests of the last second were answered
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.upstream = threading.BoundedSemaphore(8)
        self.left_in_burst = 0
        self.s3_requests = self.faults = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                authorization = self.headers.get("Authorization", "")
                if proxy.deny == self.command and "/s3/aws4_request" in authorization:
                    self._answer(403, ACCESS_DENIED)
                    return
                if proxy.refuse_target and self.headers.get("X-Amz-Target") == proxy.refuse_target:
                    self._answer(400, REFUSED, "application/x-amz-json-1.1")
                    return
                if proxy.slow_down(authorization):
                    self._answer(503, SLOW_DOWN)
                    return
                headers = dict(self.headers.items())
                failed_keys = []
                if proxy.key_errors and self.command == "POST" and re.search(r"[?&]delete(=|&|$)", self.path):
                    body, failed_keys = proxy.fail_some_keys(body)
                    headers = {
                        k: v
                        for k, v in headers.items()
                        if not k.lower().startswith(
                            ("x-amz-checksum", "x-amz-sdk-checksum", "content-md5", "content-length")
                        )
                    }
                    headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
                    headers["Content-Length"] = str(len(body))
                with proxy.upstream:  # moto's server takes a few connections at a time
                    upstream = http.client.HTTPConnection(*proxy.target, timeout=60)
                    try:
                        upstream.request(self.command, self.path, body=body, headers=headers)
                        answer = upstream.getresponse()
                        payload = answer.read()
                    finally:
                        upstream.close()
                if failed_keys and answer.status == 200:
                    errors = "".join(
                        "<Error><Key>%s</Key>%s<Code>SlowDown</Code><Message>Please reduce your request rate."
                        "</Message></Error>" % (key, "<VersionId>%s</VersionId>" % version if version else "")
                        for key, version in failed_keys
                    )
                    payload = payload.replace(b"</DeleteResult>", errors.encode() + b"</DeleteResult>")
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(name, value)
                # A HEAD answer has no body: its length is the object's, as the server gave it.
                length = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _answer(self, status, body, content_type="application/xml"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def slow_down(self, authorization: str) -> bool:
        """Whether this request is answered SlowDown: S3 requests only, in bursts of `burst` consecutive ones that
        start so that about `share` of them are refused."""
        if "/s3/aws4_request" not in authorization:
            return False
        with self.lock:
            self.s3_requests += 1
            if self.rate is not None:
                now = time.monotonic()
                while self.recent and self.recent[0] < now - 1.0:
                    self.recent.popleft()
                if len(self.recent) >= self.rate:
                    self.faults += 1
                    return True
                self.recent.append(now)
                return False
            if self.left_in_burst == 0 and self.rng.random() < self.share / self.burst:
                self.left_in_burst = self.burst
            if self.left_in_burst:
                self.left_in_burst -= 1
                self.faults += 1
                return True
            return False

    def fail_some_keys(self, body: bytes) -> Tuple[bytes, List[Tuple[str, str]]]:
        """A DeleteObjects body without a share `key_errors` of its keys, and those keys (as the XML spells them).
        A body left with no key keeps one, so that the request stays valid; it is answered per key anyway."""
        objects = re.findall(rb"<Object>.*?</Object>", body, re.S)
        with self.lock:
            failing = [o for o in objects if self.rng.random() < self.key_errors][: max(0, len(objects) - 1)]
            self.key_faults += len(failing)
        for block in failing:
            body = body.replace(block, b"", 1)
        keys = []
        for block in failing:  # (key, version id or "") as the XML spells them: S3 answers both per key
            version = re.search(rb"<VersionId>(.*?)</VersionId>", block, re.S)
            key = re.search(rb"<Key>(.*?)</Key>", block, re.S).group(1).decode()  # type: ignore[union-attr]
            keys.append((key, version.group(1).decode() if version else ""))
        return body, keys

    def __enter__(self) -> "SlowDownProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
