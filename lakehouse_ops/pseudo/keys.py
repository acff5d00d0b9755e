"""Key material and API keys: from AWS Secrets Manager or the environment (or a key file for development),
fetched once per process and cached. Never from config files, never logged."""

import os
import threading
from typing import Any, Dict

from lakehouse_ops.errors import ConfigError
from lakehouse_ops.pseudo.cipher import Keyring

_cache: Dict[Any, Keyring] = {}
_lock = threading.Lock()


def _secret_string(secret_id):
    from lakehouse_ops.aws.clients import client

    try:
        return client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    except Exception as exc:  # the error names the secret, never its value
        raise ConfigError("cannot read secret %s from Secrets Manager: %s" % (secret_id, type(exc).__name__)) from None


def _cached(key, load):
    with _lock:
        if key not in _cache:
            _cache[key] = load()
        return _cache[key]


def keyring_from_secret(secret_id):
    return _cached(
        ("keyring", secret_id), lambda: Keyring.from_json(_secret_string(secret_id), "secret %s" % secret_id)
    )


def keyring_from_file(path):
    def load():
        try:
            with open(path, encoding="utf-8") as handle:
                return Keyring.from_json(handle.read(), "key file %s" % path)
        except OSError as exc:
            raise ConfigError("cannot read key file %s: %s" % (path, exc.strerror)) from None

    return _cached(("keyfile", path), load)


def keyring_for(keys_secret=None, key_file=None):
    """The keyring from a Secrets Manager secret, else from a key file (development)."""
    return keyring_from_secret(keys_secret) if keys_secret else keyring_from_file(key_file)


def api_key(env_var=None, secret_id=None):
    """The service API key: environment variable first, else a Secrets Manager secret (plain string, or JSON
    with an "api_key" field)."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    if secret_id:

        def load():
            import json

            text = _secret_string(secret_id)
            try:
                return json.loads(text)["api_key"]
            except (ValueError, KeyError, TypeError):
                return text

        return _cached(("apikey", secret_id), load)
    raise ConfigError(
        "no API key for the pseudonymization service: set %s or configure a Secrets Manager secret"
        % (env_var or "the api_key_env variable")
    )


def forget():
    """Drop cached secrets (after a rotation, and in tests)."""
    with _lock:
        _cache.clear()
