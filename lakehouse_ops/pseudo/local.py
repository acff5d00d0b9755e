"""The reference service for development: keys from a local file (created if absent), and the service started on
loopback when nothing answers there (the demo)."""

from typing import Any, Optional, Tuple
from urllib.parse import urlparse

from lakehouse_ops.logs import get_logger
from lakehouse_ops.pseudo.cipher import Keyring
from lakehouse_ops.pseudo.service import PseudonymService, serve

log = get_logger("pseudo.service")


def load_or_create_key_file(path: str) -> Tuple[Keyring, bool]:
    """Development keys from `path`, created (mode 0600) with one new key if absent. Returns (keyring, created)."""
    import os

    from lakehouse_ops.pseudo import keys

    created = False
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(Keyring.generate().to_json())
        created = True
    return keys.keyring_from_file(path), created


def ensure_local_service(url: str, key_file: str, api_key_env: str) -> Optional[Any]:
    """Make sure the reference service answers at `url` (a loopback URL): start it on a thread if nothing listens
    there. Returns the server we started, or None."""
    from lakehouse_ops.aws.local import listening
    from lakehouse_ops.errors import ConfigError
    from lakehouse_ops.pseudo import keys

    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise ConfigError("the demo runs the reference service locally; pseudonymization.service_url is %s" % url)
    port = parsed.port or 80
    if listening(parsed.hostname, port):
        return None
    keyring, created = load_or_create_key_file(key_file)
    if created:
        log.info("created a development key file; keep it out of version control", extra={"path": key_file})
    server, _ = serve(PseudonymService(keyring, keys.api_key(env_var=api_key_env)), parsed.hostname, port)
    log.info("started the reference pseudonymization service", extra={"url": url})
    return server
