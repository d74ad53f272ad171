"""The vocabulary of the settings models: a strict frozen base model and constrained types.

Every tier declares its settings as a pydantic model built from these pieces, keyed by the
camelCase names of the stack file. A rejected value reads `rag-infra:<path> must be <rule>, got
<value>`: the key as written in the stack file, the value given and what is allowed.
`settings_error` turns pydantic's report into those lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NoReturn, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

PROJECT = "rag-infra"

# Images that more than one tier runs, pinned to real release tags (`latest` is never accepted).
DEFAULT_NGINX_IMAGE = "nginx:1.30.4-alpine"
DEFAULT_POSTGRES_IMAGE = "postgres:17.11-alpine"  # Kong's database and the Neon controller's
DEFAULT_BACKUP_IMAGE = "python:3.13.7-slim"
"""The official Python image: the backup services run our standard-library modules in it."""


class SettingsError(ValueError):
    """A stack configuration value is missing, malformed or not allowed."""


def config_key(path: str) -> str:
    """The full config key of a path inside the project namespace (`rag-infra:qdrant.nodes`)."""
    return f"{PROJECT}:{path}"


def fail(rule: str, at: str = "") -> NoReturn:
    """Reject the value being validated; `at` extends its key (`collections[0].name`)."""
    raise PydanticCustomError("rag_infra", "{rule}", {"rule": rule, "at": at})


class ConfigModel(BaseModel):
    """A config object: camelCase keys, unknown keys refused (a typo is never ignored), frozen."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_default=True,
        use_attribute_docstrings=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _an_object_of_known_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            fail(f"must be an object, got {data!r}")
        allowed = sorted(field.alias or name for name, field in cls.model_fields.items())
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            fail(f"has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        return data


def is_prod(info: ValidationInfo) -> bool:
    """Whether the stack being validated is prod (its defaults differ: safer, never looser)."""
    return (info.context or {}).get("environment") == "prod"


def settings_error(error: ValidationError) -> SettingsError:
    """One line per problem, each naming its full key, the value given and the rule."""
    lines = []
    for problem in error.errors():
        context = problem.get("ctx") or {}
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
        path = (path + ("." if path and context.get("at") else "") + context.get("at", "")).lstrip(".")
        if problem["type"] == "rag_infra":
            rule = context["rule"]
        elif problem["type"] == "missing":
            rule = "is required"
        else:
            rule = f"is not valid ({problem['msg']}), got {problem['input']!r}"
        lines.append(f"{config_key(path)} {rule}" if path else rule)
    return SettingsError("\n".join(dict.fromkeys(lines)))


def _checked(base: Any, check: Callable[[Any], Any], **schema: Any) -> Any:
    # The check enforces; `schema` only documents the rule in the JSON Schema.
    extra = {key: value for key, value in schema.items() if value is not None}
    return Annotated[base, BeforeValidator(check), Field(json_schema_extra=extra or None)]


def optional(constrained: Any) -> Any:
    """The same constrained type, or null (absent)."""
    base, validator, *schema = get_args(constrained)
    check = validator.func
    return Annotated[base | None, BeforeValidator(lambda v: None if v is None else check(v)), *schema]


def whole(minimum: int | None = None, maximum: int | None = None, *, odd: bool = False) -> Any:
    """A whole number (never a boolean) within bounds."""

    def check(value: Any) -> int:
        valid = isinstance(value, int) and not isinstance(value, bool)
        valid = valid and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
        if not valid or (odd and value % 2 == 0):
            bounds = [f">= {minimum}"] * (minimum is not None) + [f"<= {maximum}"] * (maximum is not None)
            kind = "an odd number" if odd else "a whole number"
            fail(f"must be {kind} {' and '.join(bounds)}, got {value!r}".replace("  ", " "))
        return value

    return _checked(int, check, minimum=minimum, maximum=maximum)


PORT = whole(1, 65535)


def _check_fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        fail(f"must be a number from 0 to 1, got {value!r}")
    return float(value)


FRACTION = _checked(float, _check_fraction, minimum=0, maximum=1)


def _check_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        fail(f"must be true or false, got {value!r}")
    return value


FLAG = _checked(bool, _check_flag)


def text(
    pattern: str | None = None,
    what: str = "",
    choices: tuple[str, ...] = (),
    check: Callable[[str], None] | None = None,
) -> Any:
    """A non-empty string, optionally one of `choices`, matching `pattern` (described as `what`),
    or passing `check` (which calls `fail`)."""

    def validate(value: Any) -> str:
        if not isinstance(value, str) or not value:
            fail(f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            fail(f"must be one of {', '.join(choices)}, got {value!r}")
        if pattern is not None and not re.fullmatch(pattern, value):
            fail(f"must be {what or 'a string matching ' + pattern}, got {value!r}")
        if check is not None:
            check(value)
        return value

    return _checked(Literal[choices] if choices else str, validate)  # type: ignore[valid-type]


def items(item: Any = str, *, what: str = "strings", non_empty: bool = False) -> Any:
    """A list (a tuple once parsed) of `item`; `what` names the items in the error."""

    def check(value: Any) -> Any:
        is_object = what == "objects"
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, Mapping) if is_object else isinstance(v, str) for v in value
        ):
            fail(f"must be a list of {what}, got {value!r}")
        if non_empty and not value:
            fail("must not be empty")
        return value

    return _checked(tuple[item, ...], check)


def unique(names: list[Any] | tuple[Any, ...], at: str) -> None:
    """Refuse a list that names something twice."""
    seen = set()
    for name in names:
        if name in seen:
            fail(f"lists {name!r} twice; names must be unique", at)
        seen.add(name)


def unique_ports(ports: Mapping[str, int], at: str = "") -> None:
    """Refuse two listeners on one port."""
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            fail(f"uses port {port} for both {seen[port]} and {name}", at)
        seen[port] = name


_IMAGE_RE = re.compile(
    r"(?P<repo>[a-z0-9][a-z0-9._/:-]*?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)


def _check_image(value: Any) -> str:
    if not isinstance(value, str) or not value:
        fail(f"must be a non-empty string, got {value!r}")
    match = _IMAGE_RE.fullmatch(value)
    if not match or not (match["tag"] or match["digest"]) or match["tag"] == "latest":
        fail(f"must be an image pinned by a release tag or digest (not `latest`), got {value!r}")
    if match["tag"] and not match["digest"] and not re.search(r"\d", match["tag"]):
        # `dev`, `stable`, `alpine`: names that move to other releases; they also hide the version.
        fail(f"must be an image pinned by a release tag or digest (a tag with a version), got {value!r}")
    return value


IMAGE = _checked(str, _check_image)
"""An image reference pinned by a tag other than `latest`, or by digest."""


def image_version(image: str) -> tuple[int, ...] | None:
    """The numeric version in an image tag (`qdrant/qdrant:v1.16.3` -> (1, 16, 3)), if any."""
    match = _IMAGE_RE.fullmatch(image)
    version = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", (match["tag"] if match else None) or "")
    return tuple(int(part) for part in version.groups(default="0")) if version else None


BUCKET = text(r"[a-z0-9][a-z0-9.-]{2,62}", "an S3 bucket name")


class BackupSettings(ConfigModel):
    """A backup schedule into the stack's object storage: how often, how many kept, where."""

    enabled: FLAG = True
    every_hours: whole(1, 24 * 7) = 24
    keep: whole(1, 365) = 7
    """Complete backups kept; older ones are removed after each new one."""
    bucket: BUCKET
    image: IMAGE = DEFAULT_BACKUP_IMAGE
    """Where the backup program runs (components/platform/scripts.py)."""
