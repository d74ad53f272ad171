"""A stand-in for Kong's proxy driven by a rendered kong.yml: route matching on the regex paths,
the cors plugin first (priority 2000, `kong/plugins/cors/handler.lua`: a preflight is answered
at once, and a disallowed origin gets no Access-Control-Allow-Origin), then jwt (1450, the
checks of `tests/support/kong_jwt.py`), then rate-limiting's headers (910), then the upstream,
which answers `upstream_status` (200, or 503 as Kong does when the application is not deployed).

`broken` makes it wrong the way a misconfigured gateway would be: `unsigned` accepts any token
that parses, `cors-wildcard` allows every origin, `no-rate-limit` sends no RateLimit headers.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from tests.support.fake_metrics import kong_exposition
from tests.support.kong_jwt import kong_jwt_verdict


class FakeKong:
    bind: tuple[str, int] = ("127.0.0.1", 0)
    """Where the proxy listens (the Kong stand-in image binds KONG_PROXY_LISTEN's port)."""

    def __init__(self, kong_yml: str, broken: str = "") -> None:
        self.kong_yml = kong_yml
        self.config = yaml.safe_load(kong_yml)
        self.broken = broken
        self.upstream_status = 200
        """What the application behind each route answers (503: not deployed, Kong's own page)."""
        self.counts: Counter[tuple[str, int]] = Counter()
        """(route, status) -> requests answered, what the prometheus plugin counts."""
        self.server = ThreadingHTTPServer(self.bind, self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeKong:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, path: str) -> dict | None:
        for service in self.config["services"]:
            for route in service["routes"]:
                if any(re.match(p.removeprefix("~"), path) for p in route["paths"]):
                    return route
        return None

    def metrics(self, counts: Counter[tuple[str, int]] | None = None) -> str:
        """The status listener's /metrics, as the prometheus plugin of the config serves it
        (`counts`: the node's, when it has several proxy listeners; else this one's)."""
        plugin = next((p for p in self.config.get("plugins") or [] if p["name"] == "prometheus"), None)
        return kong_exposition(plugin, dict(self.counts if counts is None else counts))

    def origin_allowed(self, origin: str) -> bool:
        if self.broken == "cors-wildcard":
            return True
        cors = next(p for p in self.config["plugins"] if p["name"] == "cors")["config"]
        return any(o == "*" or re.fullmatch(o, origin) for o in cors["origins"])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        kong = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            route_name: str | None = None

            def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                if self.route_name:
                    kong.counts[(self.route_name, status)] += 1
                data = json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> None:
                route = kong.route(self.path)
                if route is None:
                    return self._send(404, {"message": "no Route matched with those values"})
                self.route_name = route["name"]
                origin = self.headers.get("Origin")
                cors = (
                    {"Access-Control-Allow-Origin": origin} if origin and kong.origin_allowed(origin) else {}
                )
                if self.command == "OPTIONS" and origin and self.headers.get("Access-Control-Request-Method"):
                    return self._send(200, {}, cors)
                authorization = self.headers.get("Authorization")
                status, message = kong_jwt_verdict(kong.kong_yml, route["name"], authorization)
                if kong.broken == "unsigned" and authorization:
                    status = 200
                if status != 200:
                    return self._send(status, {"message": message}, cors)
                limits = {"RateLimit-Limit": "600", "X-RateLimit-Limit-Minute": "600"}
                if kong.broken == "no-rate-limit":
                    limits = {}
                return self._send(kong.upstream_status, {"message": "upstream"}, {**cors, **limits})

            do_GET = do_POST = do_OPTIONS = _route  # noqa: N815 (http.server names)

        return Handler
