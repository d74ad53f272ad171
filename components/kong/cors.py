"""How Kong's CORS plugin reads an `origins` entry: shared by the settings and the policy pack
(which imports it without the rest of the program, so this module needs only the standard library)."""

import re

# Origins of two unrelated sites: a pattern that admits both admits any site.
_UNRELATED_ORIGINS = ("https://attacker.example", "https://203.0.113.7:8443")


def origin_allows_any_site(origin: str) -> bool:
    """Whether a CORS `origins` entry lets every site in: `*`, or a regex such as `.*` or `https://.*`.

    Kong's cors handler matches a regex entry anchored at the start with `$` appended
    (`kong/plugins/cors/handler.lua`), that is as a full match.
    """
    if origin == "*":
        return True
    try:
        pattern = re.compile(origin)
    except re.error:
        return False
    return all(pattern.fullmatch(site) for site in _UNRELATED_ORIGINS)
