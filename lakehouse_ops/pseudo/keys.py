"""Key material and API keys: from AWS Secrets Manager or the environment (or a key file for development),
cached per process for KEYRING_TTL_S (a rotation reaches a running job), read again at once when a key version is
asked for that the cached keyring lacks. Never from config files, never logged."""

import os
import threading
import time
from typing import Any, Callable, Dict, Optional, TypeVar

from lakehouse_ops.errors import ConfigError
from lakehouse_ops.pseudo.cipher import Keyring

_cache: Dict[Any, Any] = {}
_lock = threading.Lock()
T = TypeVar("T")


def _secret_string(secret_id: str) -> str:
    from lakehouse_ops.aws.clients import client

    try:
        text: str = client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        return text
    except Exception as exc:  # the error names the secret, never its value
        raise ConfigError("cannot read secret %s from Secrets Manager: %s" % (secret_id, type(exc).__name__)) from None


# A keyring is read again after this long, so a rotation reaches every process of a long-running job.
KEYRING_TTL_S = 300.0


def _cached(
    key: Any, load: Callable[[], T], ttl: Optional[float] = None, stale: Optional[Callable[[T], bool]] = None
) -> T:
    """`load()`'s value, cached per process; read again after `ttl` seconds, or when `stale(value)` says so."""
    with _lock:
        found = _cache.get(key)
        expired = found is not None and ttl is not None and time.time() - found[1] > ttl
        if found is None or expired or (stale is not None and stale(found[0])):
            found = (load(), time.time())
            _cache[key] = found
        value: T = found[0]
        return value


def keyring_from_secret(secret_id: str, version: Optional[int] = None) -> Keyring:
    return _cached(
        ("keyring", secret_id),
        lambda: Keyring.from_json(_secret_string(secret_id), "secret %s" % secret_id),
        KEYRING_TTL_S,
        lambda ring: version is not None and version not in ring.keys,
    )


def keyring_from_file(path: str, version: Optional[int] = None) -> Keyring:
    def load() -> Keyring:
        try:
            with open(path, encoding="utf-8") as handle:
                return Keyring.from_json(handle.read(), "key file %s" % path)
        except OSError as exc:
            raise ConfigError("cannot read key file %s: %s" % (path, exc.strerror)) from None

    return _cached(
        ("keyfile", path), load, KEYRING_TTL_S, lambda ring: version is not None and version not in ring.keys
    )


def keyring_for(
    keys_secret: Optional[str] = None, key_file: Optional[str] = None, version: Optional[int] = None
) -> Keyring:
    """The keyring from a Secrets Manager secret, else from a key file (development). `version`: a key version it
    must hold (a keyring cached before a rotation is read again)."""
    if keys_secret:
        return keyring_from_secret(keys_secret, version)
    if not key_file:
        raise ConfigError("no pseudonymization keys: configure keys_secret (Secrets Manager) or key_file")
    return keyring_from_file(key_file, version)


def api_key(env_var: Optional[str] = None, secret_id: Optional[str] = None) -> str:
    """The service API key: environment variable first, else a Secrets Manager secret (plain string, or JSON
    with an "api_key" field)."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    if secret_id:

        def load() -> str:
            import json

            text = _secret_string(secret_id)
            try:
                return str(json.loads(text)["api_key"])
            except (ValueError, KeyError, TypeError):
                return text

        return _cached(("apikey", secret_id), load, KEYRING_TTL_S)
    raise ConfigError(
        "no API key for the pseudonymization service: set %s or configure a Secrets Manager secret"
        % (env_var or "the api_key_env variable")
    )


def secret_json(secret_id: str) -> Dict[str, Any]:
    """A Secrets Manager secret holding a JSON object (read once per KEYRING_TTL_S)."""
    import json

    def load() -> Dict[str, Any]:
        try:
            found = json.loads(_secret_string(secret_id))
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise ConfigError("secret %s does not hold a JSON object" % secret_id)
        return found

    return _cached(("json", secret_id), load, KEYRING_TTL_S)


def forget() -> None:
    """Drop cached secrets (after a rotation, and in tests)."""
    with _lock:
        _cache.clear()
