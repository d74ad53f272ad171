"""Whether a port answers from elsewhere than the host's loopback: the admin and operator ports
must not (they are published on 127.0.0.1 only)."""

from __future__ import annotations

import socket
import subprocess
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine outside 127/8, if it has one (`ip -4 addr`)."""
    try:
        shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    addresses = [line.split()[3].split("/")[0] for line in shown.stdout.splitlines()]
    return next((a for a in addresses if not a.startswith("127.")), None)


def accepts(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to host:port is accepted."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def public_address(public_url: str) -> str | None:
    """The address other machines reach the stack's host at: the host of a public URL, or for
    a stack on this machine (`localhost`) this machine's non-loopback address."""
    host = urlsplit(public_url).hostname or ""
    return non_loopback_address() if host in LOOPBACK_NAMES or host.startswith("127.") else host
