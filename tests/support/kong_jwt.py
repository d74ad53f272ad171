"""What Kong's jwt plugin does with a request, read from `kong/plugins/jwt/handler.lua` (3.9.3)
and `kong/plugins/jwt/jwt_parser.lua`, applied to a rendered kong.yml (facts/kong-nginx.md §3.1).

Kong is not available here; this follows its order of checks and its 401 messages, so a token
and a config that disagree (another `key_claim_name`, algorithm or secret) fail as in Kong.
"""

from __future__ import annotations

import re
import time

import jwt
import yaml


def kong_jwt_verdict(kong_yml: str, route: str, authorization: str | None, now: float | None = None):
    """(status, message) Kong's jwt plugin gives a request with this Authorization header."""
    document = yaml.safe_load(kong_yml)
    plugin = next(
        p
        for service in document["services"]
        for r in service["routes"]
        if r["name"] == route
        for p in r.get("plugins") or []
        if p["name"] == "jwt"
    )
    conf = plugin["config"]
    # handler.lua retrieve_tokens: headers named in header_names, value `Bearer <token>`.
    match = (
        re.match(r"\s*[Bb]earer\s+(.+)", authorization or "")
        if "authorization" in conf["header_names"]
        else None
    )
    if not match:
        return 401, "Unauthorized"
    token = match.group(1)
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as err:
        return 401, f"Bad token; {err}"
    key = claims.get(conf["key_claim_name"]) or header.get(conf["key_claim_name"])
    if not key:
        return 401, f"No mandatory '{conf['key_claim_name']}' in claims"
    credentials = {
        secret["key"]: secret for consumer in document["consumers"] for secret in consumer["jwt_secrets"]
    }
    credential = credentials.get(key)
    if credential is None:
        return 401, f"No credentials found for given '{conf['key_claim_name']}'"
    if header.get("alg") != credential["algorithm"]:
        return 401, "Invalid algorithm"
    try:
        jwt.decode(
            token,
            credential["secret"],
            algorithms=[credential["algorithm"]],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        return 401, "Invalid signature"
    moment = time.time() if now is None else now
    for claim in conf.get("claims_to_verify") or []:
        if claim == "exp" and ("exp" not in claims or claims["exp"] <= moment):
            return 401, "token expired"
        if claim == "nbf" and claims.get("nbf", 0) > moment:
            return 401, "token not valid yet"
    return 200, "ok"
