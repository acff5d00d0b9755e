"""A local AWS endpoint for the demo, tests and benchmarks: moto's standalone server on a loopback port."""

import socket
import subprocess
import sys
import time
import urllib.request
from typing import Optional, Tuple

from lakehouse_ops.errors import LakehouseOpsError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start_moto(
    host: str = "127.0.0.1", port: Optional[int] = None, launcher: Optional[str] = None, timeout_s: float = 60
) -> Tuple["subprocess.Popen[bytes]", str]:
    """Start moto's server (or `launcher`, a script taking moto's -H/-p arguments); return (process, url)."""
    port = port or free_port(host)
    command = [sys.executable] + ([launcher] if launcher else ["-m", "moto.server"]) + ["-H", host, "-p", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://%s:%d" % (host, port)
    deadline = time.time() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise LakehouseOpsError("moto's server did not start on %s" % url)
            time.sleep(0.2)
