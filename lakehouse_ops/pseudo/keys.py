"""Key material and API keys: from AWS Secrets Manager or the environment (or a key file for development),
fetched once per process and cached. Never from config files, never logged."""

import os
import threading
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


def _cached(key: Any, load: Callable[[], T]) -> T:
    with _lock:
        if key not in _cache:
            _cache[key] = load()
        cached: T = _cache[key]
        return cached


def keyring_from_secret(secret_id: str) -> Keyring:
    return _cached(
        ("keyring", secret_id), lambda: Keyring.from_json(_secret_string(secret_id), "secret %s" % secret_id)
    )


def keyring_from_file(path: str) -> Keyring:
    def load() -> Keyring:
        try:
            with open(path, encoding="utf-8") as handle:
                return Keyring.from_json(handle.read(), "key file %s" % path)
        except OSError as exc:
            raise ConfigError("cannot read key file %s: %s" % (path, exc.strerror)) from None

    return _cached(("keyfile", path), load)


def keyring_for(keys_secret: Optional[str] = None, key_file: Optional[str] = None) -> Keyring:
    """The keyring from a Secrets Manager secret, else from a key file (development)."""
    if keys_secret:
        return keyring_from_secret(keys_secret)
    if not key_file:
        raise ConfigError("no pseudonymization keys: configure keys_secret (Secrets Manager) or key_file")
    return keyring_from_file(key_file)


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

        return _cached(("apikey", secret_id), load)
    raise ConfigError(
        "no API key for the pseudonymization service: set %s or configure a Secrets Manager secret"
        % (env_var or "the api_key_env variable")
    )


def forget() -> None:
    """Drop cached secrets (after a rotation, and in tests)."""
    with _lock:
        _cache.clear()
