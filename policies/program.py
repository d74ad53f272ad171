"""Run the whole Pulumi program for a stack file under Pulumi's own mocks (tests, policies.check).

Config comes from the real `Pulumi.yaml` defaults and `Pulumi.<stack>.yaml`; `secure:` values
are replaced by placeholders (no passphrase needed). Every registered resource is recorded
with its type, name, inputs and provider, and the stack outputs are resolved together with
whether each is secret.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import re
import runpy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings as runtime_settings

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "rag-infra"
SECRET_PLACEHOLDER = "placeholder-secret-value"
SERVICE = "docker:index/service:Service"
ANY_NODE = "any swarm node"
"""The host of a service Swarm may place on any node."""
SERVICE_CONFIG = "docker:index/serviceConfig:ServiceConfig"
SERVICE_SECRET = "docker:index/secret:Secret"

# Pulumi wraps secret inputs in this shape on the wire (mocks see it as-is).
SECRET_SIG = "4dabf18193072939515e22adb298388d"


@dataclass
class RegisteredResource:
    """One resource as the engine saw it."""

    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str
    custom: bool
    host: str | None = None
    """Where a workload view runs when no provider says it (a Swarm service's pinned host)."""

    def plain(self, key: str, default: Any = None) -> Any:
        """An input with any secret wrapper removed."""
        return unwrap_secrets(self.inputs.get(key, default))


def repository(reference: str) -> str:
    """`kong:3.9.3` -> `kong`; `ghcr.io/x/y:tag@sha256:…` -> `ghcr.io/x/y`."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def repo_digest(ref: str) -> str:
    """What the Docker provider records for a pulled image: `<repository>@<digest>`, the tag
    dropped, the digest the one the reference pins (a made-up one for a tag alone)."""
    digest = ref.partition("@")[2]
    return f"{repository(ref)}@{digest or 'sha256:' + '0' * 64}"


@dataclass
class ProgramRun:
    """What one run of the program registered and exported."""

    resources: list[RegisteredResource]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    depends_on: dict[str, set[str]] = field(default_factory=dict)
    """Logical name -> logical names of its explicit `depends_on` (resource options)."""
    retained: set[str] = field(default_factory=set)
    """Logical names registered with `retain_on_delete` (resource options)."""
    deleted_before_replace: set[str] = field(default_factory=set)
    """Logical names registered with `delete_before_replace` (resource options)."""

    def of_type(self, typ: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, name: str) -> RegisteredResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    @property
    def containers(self) -> list[RegisteredResource]:
        return self.of_type("docker:index/container:Container")

    def container(self, name: str) -> RegisteredResource:
        """A container by its Docker name (the `name` input)."""
        matches = [c for c in self.containers if c.inputs.get("name") == name]
        if len(matches) != 1:
            names = sorted(str(c.inputs.get("name")) for c in self.containers)
            raise KeyError(f"no single container named {name!r}; have {names}")
        return matches[0]

    @property
    def services(self) -> list[RegisteredResource]:
        return self.of_type(SERVICE)

    def service(self, name: str) -> RegisteredResource:
        """A Swarm service by its Docker name (the `name` input)."""
        matches = [s for s in self.services if s.inputs.get("name") == name]
        if len(matches) != 1:
            names = sorted(str(s.inputs.get("name")) for s in self.services)
            raise KeyError(f"no single service named {name!r}; have {names}")
        return matches[0]

    def service_files(self, service: RegisteredResource) -> dict[str, tuple[str, bool]]:
        """Path -> (content, is a Swarm secret) of every config and secret a service mounts."""
        # By name: a reference carries the object's name and id, and ids are the engine's.
        objects = {
            (r.typ, r.plain("name")): r for r in self.resources if r.typ in (SERVICE_CONFIG, SERVICE_SECRET)
        }
        spec = service.plain("taskSpec")["containerSpec"]
        files = {}
        kinds = (("configs", SERVICE_CONFIG, "configName"), ("secrets", SERVICE_SECRET, "secretName"))
        for kind, typ, name_key in kinds:
            for ref in spec.get(kind) or []:
                data = objects[(typ, ref[name_key])].plain("data")
                files[ref["fileName"]] = (base64.b64decode(data).decode(), kind == "secrets")
        return files

    @property
    def workloads(self) -> list[RegisteredResource]:
        """Every long-running component, containers as registered and each Swarm service seen as
        the container it runs (`name`, `labels`, `image`, `command` (its entrypoint, when it
        replaces the image's, then its args), `envs`,
        `ports` {internal, external}, `networksAdvanced` aliases, `volumes`, `uploads` (its
        configs and secrets), `memory` MB, `healthcheck`), with the host it is pinned to."""
        return self.containers + [self._service_view(s) for s in self.services]

    def workload(self, name: str) -> RegisteredResource:
        """A container or a service by its Docker name."""
        matches = [w for w in self.workloads if w.inputs.get("name") == name]
        if len(matches) != 1:
            names = sorted(str(w.inputs.get("name")) for w in self.workloads)
            raise KeyError(f"no single container or service named {name!r}; have {names}")
        return matches[0]

    def _service_view(self, service: RegisteredResource) -> RegisteredResource:
        task = service.plain("taskSpec")
        spec = task["containerSpec"]
        limits = (task.get("resources") or {}).get("limits") or {}
        constraints = (task.get("placement") or {}).get("constraints") or []
        pinned = [c for c in constraints if c.startswith("node.labels.rag-infra.host.")]
        # Mock ids are `<logical name>-id`: the network a service names by id, by its name.
        networks = {
            f"{r.name}-id": r.inputs.get("name") for r in self.of_type("docker:index/network:Network")
        }
        host = ANY_NODE
        if pinned:
            index = pinned[0].removeprefix("node.labels.rag-infra.host.").removesuffix("==true")
            host = self.named(f"docker-host-{index}").inputs["host"]
        inputs = {
            "name": service.inputs.get("name"),
            "labels": service.inputs.get("labels"),
            "image": spec.get("image"),
            "command": [*(spec.get("commands") or []), *(spec.get("args") or [])] or None,
            "envs": [f"{k}={v}" for k, v in (spec.get("env") or {}).items()],
            "ports": [
                {"internal": p["targetPort"], "external": p["publishedPort"]}
                for p in (service.plain("endpointSpec") or {}).get("ports") or []
            ],
            "networksAdvanced": [
                {"name": networks.get(n.get("id"), n.get("id")), "aliases": n.get("aliases")}
                for n in task.get("networksAdvanceds") or []
            ],
            "volumes": [
                {"volumeName": m["source"], "containerPath": m["target"]} for m in spec.get("mounts") or []
            ],
            "uploads": [
                {"file": path, "content": content}
                for path, (content, _) in self.service_files(service).items()
            ],
            "memory": int(limits["memoryBytes"]) // (1024 * 1024) if limits.get("memoryBytes") else None,
            "healthcheck": spec.get("healthcheck"),
        }
        return RegisteredResource(service.typ, service.name, inputs, service.provider, service.custom, host)

    def provider_host(self, resource: RegisteredResource) -> str:
        """The Docker host URL of the provider a resource was created with."""
        if resource.host is not None:
            return resource.host
        provider_name = resource.provider.split("::")[-2] if resource.provider else ""
        provider = self.named(provider_name.split("$")[-1])
        return provider.inputs["host"]


def unwrap_secrets(value: Any) -> Any:
    """Replace Pulumi's secret wrapper dicts by their plain values, recursively."""
    if isinstance(value, dict):
        if SECRET_SIG in value and "value" in value:
            return unwrap_secrets(value["value"])
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def contains_secret_wrapper(value: Any) -> bool:
    if isinstance(value, dict):
        return SECRET_SIG in value or any(contains_secret_wrapper(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret_wrapper(v) for v in value)
    return False


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource and answers with plausible outputs."""

    def __init__(self) -> None:
        self.resources: list[RegisteredResource] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.record(args)
        return self.answer(args)

    def record(self, args: pulumi.runtime.MockResourceArgs) -> None:
        """Keep the resource as registered."""
        self.resources.append(
            RegisteredResource(args.typ, args.name, dict(args.inputs), args.provider, args.custom)
        )

    def answer(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        """Its id and a plausible state (its inputs, and the outputs the program reads)."""
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"generated-{args.name}"
        elif args.typ == "random:index/randomId:RandomId":
            digest = hashlib.md5(args.name.encode(), usedforsecurity=False).digest()
            state["hex"], state["b64Std"] = digest.hex(), base64.b64encode(digest).decode()
        elif args.typ in ("command:local:Command", "command:remote:Command"):
            create = str(args.inputs.get("create", ""))
            # What `python -m verify --json` prints; any other command: a value naming it.
            verified = json.dumps({"ok": True, "checks": []})
            state["stdout"] = verified if " -m verify " in create else f"{args.name}-stdout"
        elif args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = f"-----BEGIN PRIVATE KEY-----\n{args.name}\n-----END PRIVATE KEY-----\n"
        elif args.typ == "tls:index/selfSignedCert:SelfSignedCert":
            state["certPem"] = f"-----BEGIN CERTIFICATE-----\n{args.name}\n-----END CERTIFICATE-----\n"
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = f"sha256:{args.name}"
            state["repoDigest"] = repo_digest(str(args.inputs.get("name")))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class StackFileError(ValueError):
    """A project or stack file that cannot be read the way the Pulumi CLI reads it."""


class _CoreSchemaLoader(yaml.SafeLoader):
    """YAML 1.2's core schema, as the Pulumi CLI reads stack files (go-yaml v3): only true/false
    are booleans (`off`, `yes` stay strings), timestamps stay strings, and `010` is ten."""


_CoreSchemaLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regex)
        for tag, regex in resolvers
        if tag.rsplit(":", 1)[-1] not in ("bool", "int", "float", "timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
):
    _CoreSchemaLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _core_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _core_int)


def read_yaml(path: Path) -> Any:
    """A YAML file read with the core schema; a syntax error names the file and the line."""
    try:
        return yaml.load(path.read_text(), Loader=_CoreSchemaLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark else path.name
        raise StackFileError(f"{where}: {err.problem or err.context}") from None


def stack_config(stack: str) -> tuple[dict[str, Any], list[str]]:
    """The config values a `pulumi up` of `stack` would give the program, secrets as placeholders."""
    project = read_yaml(ROOT / "Pulumi.yaml")
    values: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        if isinstance(spec, dict) and "default" in spec:
            full = key if ":" in key else f"{PROJECT}:{key}"
            values[full] = spec["default"]
    stack_file = read_yaml(ROOT / f"Pulumi.{stack}.yaml") or {}
    secret_keys = []
    for key, value in (stack_file.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            value = SECRET_PLACEHOLDER
            secret_keys.append(key)
        values[key] = value
    return values, secret_keys


def stack_settings(stack: str) -> Any:
    """The parsed settings of a stack file, as the commands that read it outside `pulumi up`
    (tunnels, verify) need them: without the migrations, whose checks need the secrets' values."""
    from components.settings import parse_settings

    values, _ = stack_config(stack)
    prefix = f"{PROJECT}:"
    config = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    config.pop("migration", None)
    return parse_settings(config, stack=stack)


def _wire(value: Any) -> str:
    # The CLI hands structured values to the program as JSON text.
    return value if isinstance(value, str) else json.dumps(value)


def run_program(
    stack: str,
    overrides: dict[str, Any] | None = None,
    secret_overrides: dict[str, str] | None = None,
    preview: bool = False,
    mocks: RecordingMocks | None = None,
    threads: int | None = None,
) -> ProgramRun:
    """Run `__main__.py` for `stack` under mocks in a fresh root.

    `overrides` replace top-level `rag-infra:` keys (a value of None removes the key);
    `secret_overrides` set secret keys to the given plaintext. `threads` sizes the pool the
    SDK registers resources from (mocks that do real, slow work want the engine's parallelism).
    """
    values, secret_keys = stack_config(stack)
    for key, value in (overrides or {}).items():
        full = f"{PROJECT}:{key}"
        if value is None:
            values.pop(full, None)
        else:
            values[full] = copy.deepcopy(value)
    for key, value in (secret_overrides or {}).items():
        values[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")

    mocks = mocks or RecordingMocks()
    runtime_settings.ROOT.set(None)  # a fresh Stack resource, so outputs never leak between runs
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview)
    pulumi.runtime.set_all_config({k: _wire(v) for k, v in values.items()}, secret_keys)

    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    async def collect() -> None:
        exported = runtime_settings.get_root_resource().outputs
        for name, value in exported.items():
            output = pulumi.Output.from_input(value)
            outputs[name] = await output.future()
            if await output.is_secret():
                secret_outputs.add(name)

    depends_on: dict[str, set[str]] = {}
    retained: set[str] = set()
    deleted_before_replace: set[str] = set()

    def record_options(args: pulumi.ResourceTransformationArgs) -> None:
        # Mocks never see resource options; a (legacy) stack transformation runs client-side.
        declared = args.opts.depends_on if args.opts else None
        resources = declared if isinstance(declared, list) else [declared] if declared else []
        depends_on[args.name] = {r._name for r in resources if isinstance(r, pulumi.Resource)}
        if args.opts and args.opts.retain_on_delete:
            retained.add(args.name)
        if args.opts and args.opts.delete_before_replace:
            deleted_before_replace.add(args.name)

    @pulumi.runtime.test
    def program():
        if threads:
            asyncio.get_event_loop().set_default_executor(ThreadPoolExecutor(max_workers=threads))
        pulumi.runtime.register_stack_transformation(record_options)
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return collect()

    program()
    return ProgramRun(
        resources=mocks.resources,
        outputs=outputs,
        secret_outputs=secret_outputs,
        depends_on=depends_on,
        retained=retained,
        deleted_before_replace=deleted_before_replace,
    )
