"""The reference service and the client, over real HTTP on loopback."""

import json
import logging
import time

import pytest
import requests

from lakehouse_ops.pseudo import keys
from lakehouse_ops.pseudo.cipher import Keyring
from lakehouse_ops.pseudo.client import PseudoClient, PseudoServiceError

from conftest import PSEUDO_API_KEY as API_KEY

SECRET_VALUES = ["WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002", "alice@example.com"]


@pytest.fixture
def service(pseudo_service):
    return pseudo_service


def client(service, **kw):
    kw.setdefault("backoff_seconds", 0.01)
    return PseudoClient(service.url, API_KEY, **kw)


def test_round_trip_both_modes(service):
    c = client(service)
    tokens = c.pseudonymize(SECRET_VALUES)
    assert tokens == c.pseudonymize(SECRET_VALUES)  # deterministic
    assert c.reidentify(tokens) == SECRET_VALUES
    randomized = c.pseudonymize(SECRET_VALUES, deterministic=False)
    assert randomized != c.pseudonymize(SECRET_VALUES, deterministic=False)
    assert c.reidentify(randomized) == SECRET_VALUES


def test_contract_details(service):
    url = service.url
    headers = {"x-api-key": API_KEY}
    # The sample's default when the parameter is absent: randomized.
    a = requests.post(url + "/pseudonymization", json={"identifiers": ["v"]}, headers=headers).json()
    b = requests.post(url + "/pseudonymization", json={"identifiers": ["v"]}, headers=headers).json()
    assert a["pseudonyms"][0] != b["pseudonyms"][0]
    bad = requests.post(
        url + "/reidentification", json={"pseudonyms": ["garbage", a["pseudonyms"][0]]}, headers=headers
    ).json()
    assert bad == {"identifiers": [None, "v"]}
    assert requests.post(url + "/pseudonymization", data="{", headers=headers).status_code == 500
    assert requests.post(url + "/nowhere", json={}, headers=headers).status_code == 500
    assert (
        requests.post(
            url + "/pseudonymization", json={"identifiers": ["v"]}, headers={"x-api-key": "wrong"}
        ).status_code
        == 403
    )


@pytest.mark.parametrize("fault", ["429", "500", "503", "sleep:1.5"])
def test_retries_on_throttling_errors_and_timeouts(service, fault):
    c = client(service, read_timeout=0.5)
    service.inject(fault, fault)
    assert c.reidentify(c.pseudonymize(SECRET_VALUES[:1])) == SECRET_VALUES[:1]
    assert c.retries == 2


def test_persistent_failure_is_bounded_and_names_no_value(service):
    c = client(service, max_retries=3)
    service.inject(*(["503"] * 4))
    with pytest.raises(PseudoServiceError) as info:
        c.pseudonymize(SECRET_VALUES)
    assert "after 4 attempt(s)" in str(info.value) and "HTTP 503" in str(info.value)
    assert not any(v in str(info.value) for v in SECRET_VALUES)
    assert c.requests == 4


def test_wrong_length_and_nulls_are_errors(service):
    c = client(service)
    service.inject("short")
    with pytest.raises(PseudoServiceError, match="2 values for 3 sent"):
        c.pseudonymize(SECRET_VALUES)
    service.inject("null")
    with pytest.raises(PseudoServiceError, match="could not convert 1 of 3"):
        c.pseudonymize(SECRET_VALUES)
    with pytest.raises(PseudoServiceError, match="not retried"):
        PseudoClient(service.url, "wrong-key").pseudonymize(["x"])


def test_logs_hold_no_plaintext_and_no_key(service, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(logging.getLogger("lakehouse_ops"), "propagate", True)
    c = client(service)
    service.inject("429")
    c.reidentify(c.pseudonymize(SECRET_VALUES))
    text = caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert "request served" in text and "retrying" in text
    for secret in SECRET_VALUES + [API_KEY]:
        assert secret not in text


def test_keys_and_api_key_from_secrets_manager(aws_env):
    from lakehouse_ops.aws.clients import client as aws_client

    keys.forget()
    sm = aws_client("secretsmanager")
    ring = Keyring.generate(versions=2)
    sm.create_secret(Name="pseudo/keys", SecretString=ring.to_json())
    sm.create_secret(Name="pseudo/api-key", SecretString=json.dumps({"api_key": API_KEY}))
    assert keys.keyring_from_secret("pseudo/keys") == ring
    assert keys.api_key(secret_id="pseudo/api-key") == API_KEY
    sm.put_secret_value(SecretId="pseudo/keys", SecretString=Keyring.generate().to_json())
    assert keys.keyring_from_secret("pseudo/keys") == ring  # cached for the process
    keys.forget()
    assert keys.keyring_from_secret("pseudo/keys") != ring


def test_key_rotation_through_secrets_manager(aws_env):
    """Rotate the service's keys in Secrets Manager: new tokens carry the new version, tokens issued before the
    rotation still re-identify, and a service that does not hold the new version refuses its tokens."""
    import base64

    from lakehouse_ops.aws.clients import client as aws_client
    from lakehouse_ops.pseudo.service import PseudonymService, serve

    keys.forget()
    sm = aws_client("secretsmanager")
    first = Keyring.generate()
    sm.create_secret(Name="pseudo/rotating-keys", SecretString=first.to_json())
    before = PseudonymService(keys.keyring_from_secret("pseudo/rotating-keys"), API_KEY, reidentify_api_key=API_KEY)
    old_server, before.url = serve(before)
    sm.put_secret_value(SecretId="pseudo/rotating-keys", SecretString=first.rotated().to_json())
    keys.forget()  # a new service process (or Lambda cold start) reads the rotated secret
    after = PseudonymService(keys.keyring_from_secret("pseudo/rotating-keys"), API_KEY, reidentify_api_key=API_KEY)
    new_server, after.url = serve(after)
    try:
        old_tokens = client(before).pseudonymize(SECRET_VALUES)
        new_tokens = client(after).pseudonymize(SECRET_VALUES)
        assert {base64.b64decode(t)[0] for t in old_tokens} == {1}
        assert {base64.b64decode(t)[0] for t in new_tokens} == {2}
        assert set(old_tokens).isdisjoint(new_tokens)
        assert client(after).reidentify(old_tokens + new_tokens) == SECRET_VALUES * 2
        with pytest.raises(PseudoServiceError, match="could not convert 3 of 3"):
            client(before).reidentify(new_tokens)
    finally:
        old_server.shutdown()
        new_server.shutdown()
        keys.forget()


def test_retry_after_from_a_throttling_server_is_honoured():
    """A server that answers 429 with `Retry-After: 1` twice, then the service's answer: the client waits as told
    (not its own 10 ms backoff) and succeeds."""
    import http.server
    import threading

    from lakehouse_ops.pseudo.client import retry_after_seconds

    seen = []

    class Throttling(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(time.monotonic())
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if len(seen) <= 2:
                self.send_response(429)
                self.send_header("Retry-After", "1")
                payload = b"slow down"
            else:
                self.send_response(200)
                payload = json.dumps({"pseudonyms": ["p-" + v for v in body["identifiers"]]}).encode()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = PseudoClient(
            "http://127.0.0.1:%d" % server.server_address[1],
            "key",
            backoff_seconds=0.01,
            max_retries=4,
            max_retry_seconds=20,
        )
        assert client.pseudonymize(["a", "b"]) == ["p-a", "p-b"]
    finally:
        server.shutdown()
    assert client.retries == 2 and len(seen) == 3
    assert seen[1] - seen[0] >= 0.95 and seen[2] - seen[1] >= 0.95
    assert retry_after_seconds("7") == 7.0 and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_a_service_with_an_aws_load_profile_throttles_and_the_client_adapts():
    """The local service answering like API Gateway + Lambda under load: 20 ms + jitter per call, 2 calls at a
    time, 429 with Retry-After past that. Eight threads share one client that may start 8 calls at once: every call
    succeeds with the right tokens, the service throttled some, and the client cut its calls in flight to the
    service's limit instead of retrying at full width."""
    from concurrent.futures import ThreadPoolExecutor

    from lakehouse_ops.pseudo.service import Profile, PseudonymService, serve

    keyring = Keyring.generate()
    profile = Profile(latency_ms=20, jitter_ms=10, max_concurrency=2, retry_after_s=0)
    service = PseudonymService(keyring, API_KEY, profile=profile)
    server, url = serve(service)
    try:
        refused = requests.post(url + "/pseudonymization", json={"identifiers": ["v"]}, headers={"x-api-key": "x"})
        assert refused.status_code == 403  # the key is checked before the limit
        c = PseudoClient(url, API_KEY, backoff_seconds=0.01, max_retries=20, max_in_flight=8)
        chunks = [["WVWZZZ1JZXW%06d" % (i * 10 + j) for j in range(10)] for i in range(60)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(c.pseudonymize, chunks))
        with ThreadPoolExecutor(4) as pool:  # one burst straight at the service: what a 429 looks like
            raw = list(
                pool.map(
                    lambda _: requests.post(
                        url + "/pseudonymization?deterministic=true",
                        json={"identifiers": ["v"]},
                        headers={"x-api-key": API_KEY},
                    ),
                    range(8),
                )
            )
    finally:
        server.shutdown()
    reference = PseudonymService(keyring, API_KEY)
    assert answers == [reference.vector.pseudonymize_array(__import__("pyarrow").array(c)).to_pylist() for c in chunks]
    assert service.throttled > 0 and c.throttled > 0 and c.in_flight.lowest <= 2
    assert service.calls["pseudonymization"] >= 60
    throttled = [r for r in raw if r.status_code == 429]
    assert throttled and all(r.headers["Retry-After"] == "0" for r in throttled)


def test_re_identification_takes_its_own_key_checked_before_the_body_is_read():
    """A key that may pseudonymize cannot re-identify; a refused or oversized request is answered without its body
    being read (a caller without the key cannot make the service parse anything)."""
    import socket

    from lakehouse_ops.pseudo.service import PseudonymService, serve

    service = PseudonymService(Keyring.generate(), "pseudonymize-only", reidentify_api_key="may-reidentify")
    server, url = serve(service)
    try:
        tokens = PseudoClient(url, "pseudonymize-only").pseudonymize(SECRET_VALUES)
        with pytest.raises(PseudoServiceError, match="403"):
            PseudoClient(url, "pseudonymize-only", max_retries=0).reidentify(tokens)
        assert PseudoClient(url, "may-reidentify").reidentify(tokens) == SECRET_VALUES
        assert PseudoClient(url, "may-reidentify").pseudonymize(SECRET_VALUES) == tokens
        host, port = url[len("http://") :].split(":")
        # A length that is no byte count (negative, not a number) is refused as well: it would read to the end.
        for key, length, status in (
            ("wrong", b"100000000", b"403"),
            ("may-reidentify", b"100000000", b"413"),
            ("may-reidentify", b"-1", b"400"),
            ("pseudonymize-only", b"12x", b"400"),
            ("pseudonymize-only", b"\xb2", b"400"),  # a superscript two: a digit to str.isdigit, not to int()
        ):
            path = b"/reidentification" if key != "pseudonymize-only" else b"/pseudonymization"
            with socket.create_connection((host, int(port)), timeout=5) as raw:
                raw.sendall(
                    b"POST %s HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\n"
                    b"Content-Length: %s\r\n\r\n{" % (path, key.encode(), length)
                )
                answer = raw.recv(200)  # answered at once: the 100 MB announced are never waited for
            assert answer.split(b" ")[1] == status, answer
        assert service.calls["reidentification"] == 1
    finally:
        server.shutdown()


def test_the_lambda_handler_checks_each_endpoints_key_itself(aws_env):
    from lakehouse_ops.aws.clients import client as aws_client
    from lakehouse_ops.pseudo import service as module

    keys.forget()
    sm = aws_client("secretsmanager")
    sm.create_secret(Name="lambda/keys", SecretString=Keyring.generate().to_json())
    sm.create_secret(Name="lambda/api-keys", SecretString=json.dumps({"pseudonymization": "p-key"}))
    module._LAMBDA_SERVICE = None
    import os

    os.environ["LAKEHOUSE_OPS_PSEUDO_KEYS_SECRET"] = "lambda/keys"
    os.environ["LAKEHOUSE_OPS_PSEUDO_API_KEYS_SECRET"] = "lambda/api-keys"
    try:

        def call(path, key, body):
            event = {"httpMethod": "POST", "path": path, "headers": {"X-Api-Key": key}, "body": json.dumps(body)}
            return module.lambda_handler(event, None)

        made = call("/pseudonymization", "p-key", {"identifiers": ["v"]})
        assert made["statusCode"] == 200
        token = json.loads(made["body"])["pseudonyms"][0]
        assert call("/pseudonymization", "other", {"identifiers": ["v"]})["statusCode"] == 403
        assert call("/reidentification", "p-key", {"pseudonyms": [token]})["statusCode"] == 403  # no key may
    finally:
        module._LAMBDA_SERVICE = None
        del os.environ["LAKEHOUSE_OPS_PSEUDO_KEYS_SECRET"], os.environ["LAKEHOUSE_OPS_PSEUDO_API_KEYS_SECRET"]
        keys.forget()
