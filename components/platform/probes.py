"""Container health checks that need no curl or wget (Qdrant and Neon images ship neither)."""

from __future__ import annotations


def bash_http_probe(port: int, path: str) -> list[str]:
    """A Docker healthcheck speaking HTTP/1.0 over bash's /dev/tcp: healthy on a 200 status."""
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 "
        "&& read -r status <&3 && [[ $status == *' 200 '* ]]"
    )
    return ["CMD", "bash", "-c", script]
