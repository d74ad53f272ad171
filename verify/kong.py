"""Kong checks through the proxy: unauthenticated, expired, forged and unsigned tokens are
refused, a token from `components.kong.token` reaches each route's upstream (an upstream that is
not deployed yet is "gateway ok, upstream down"), rate-limit headers are set, CORS answers an
allowed origin only, and the admin API refuses connections at the host's published address."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from components.kong.cors import origin_allows_any_site
from components.kong.settings import KongRouteSettings
from components.kong.token import issue_token
from verify.reach import accepts, public_address
from verify.report import Check

FOREIGN_ORIGIN = "https://not-an-allowed-origin.example"
UPSTREAM_DOWN = (502, 503, 504)


def check_kong(
    proxy_url: str,
    credentials: dict[str, Any],
    routes: Sequence[KongRouteSettings],
    origins: Sequence[str],
    timeout: float = 10.0,
) -> list[Check]:
    """Every Kong check; an unreachable proxy is the one check it reports."""
    session = requests.Session()
    consumer = credentials["consumers"][0]
    token = issue_token(credentials, consumer["username"], 600)
    claims = jwt.decode(token, options={"verify_signature": False})
    bad_tokens = {
        "expired": jwt.encode(
            {**claims, "exp": int(time.time()) - 60}, consumer["secret"], algorithm="HS256"
        ),
        "forged": jwt.encode(claims, "not-the-consumer-secret-" * 2, algorithm="HS256"),
        "unsigned": jwt.encode(claims, None, algorithm="none"),
    }
    checks = []
    for route in routes:
        if "jwt" in route.exempt_from:
            continue
        url = f"{proxy_url.rstrip('/')}{route.paths[0]}"
        try:
            anonymous = session.get(url, timeout=timeout)
        except requests.RequestException as err:
            return [Check("kong.proxy", False, f"GET {url}: {type(err).__name__}")]
        checks.append(_refused(f"kong.{route.name}.no-token", anonymous))
        for kind, bad in bad_tokens.items():
            answer = session.get(url, headers={"Authorization": f"Bearer {bad}"}, timeout=timeout)
            checks.append(_refused(f"kong.{route.name}.{kind}-token", answer))
        good = session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        checks.append(_reaches_upstream(f"kong.{route.name}.valid-token", good))
        if "rate-limiting" not in route.exempt_from:
            checks.append(_rate_limited(f"kong.{route.name}.rate-limit-headers", good))
        checks += _cors(session, url, route, origins, timeout)
    return checks


def _rate_limited(name: str, answer: requests.Response) -> Check:
    limits = [h for h in answer.headers if h.lower().startswith(("ratelimit-limit", "x-ratelimit-limit"))]
    if not limits and answer.status_code in UPSTREAM_DOWN:
        # Kong's own error page for an unreachable upstream may not carry the plugin's headers:
        # not a verdict on the gateway.
        return Check(name, True, f"not visible while the upstream is down (HTTP {answer.status_code})")
    return Check(name, bool(limits), ", ".join(limits) or "none")


def _refused(name: str, answer: requests.Response) -> Check:
    return Check(name, answer.status_code == 401, f"HTTP {answer.status_code}")


def _reaches_upstream(name: str, answer: requests.Response) -> Check:
    if answer.status_code in (401, 403, 429):
        return Check(name, False, f"HTTP {answer.status_code}: the gateway refused a valid token")
    if answer.status_code in UPSTREAM_DOWN:
        return Check(name, True, f"gateway ok, upstream down (HTTP {answer.status_code})")
    return Check(name, True, f"HTTP {answer.status_code} from the upstream")


def _cors(
    session: requests.Session, url: str, route: KongRouteSettings, origins: Sequence[str], timeout: float
):
    def preflight(origin: str) -> str | None:
        answer = session.options(
            url,
            headers={"Origin": origin, "Access-Control-Request-Method": route.methods[0]},
            timeout=timeout,
        )
        return answer.headers.get("Access-Control-Allow-Origin")

    checks = []
    named = [
        o
        for o in origins
        if not origin_allows_any_site(o) and "://" in o and not any(c in o for c in "*[(\\")
    ]
    if named:
        allowed = preflight(named[0])
        checks.append(
            Check(f"kong.{route.name}.cors-allowed", allowed in (named[0], "*"), f"{named[0]}: {allowed}")
        )
    if any(origin_allows_any_site(o) for o in origins):
        return [*checks, Check(f"kong.{route.name}.cors-foreign", True, "origins admit every site (config)")]
    foreign = preflight(FOREIGN_ORIGIN)
    checks.append(Check(f"kong.{route.name}.cors-foreign", foreign is None, f"{FOREIGN_ORIGIN}: {foreign}"))
    return checks


def check_admin_not_exposed(proxy_url: str, admin_url: str) -> Check:
    """The admin API refuses connections at the host's published address (it is bound to the
    host's loopback; operators reach it through an SSH tunnel)."""
    port = urlsplit(admin_url).port or 8001
    address = public_address(proxy_url)
    if address is None:
        return Check("kong.admin-not-exposed", True, "this machine has no address but loopback")
    if accepts(address, port):
        return Check("kong.admin-not-exposed", False, f"the admin API answers on {address}:{port}")
    return Check("kong.admin-not-exposed", True, f"refused on {address}:{port} (published on loopback only)")
