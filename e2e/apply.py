"""Carry a rendered stack to a real Docker engine: Pulumi's mocks that create what they record.

The program runs exactly as under `pulumi up`, with Pulumi's mock monitor in place of the
engine (policies/program.py `run_program`): the SDK resolves every input, honours `depends_on`
and output dependencies, and registers resources concurrently as they become ready, as the
engine would. Each registration reaches `EngineMocks.new_resource`, which creates the object on
the Docker engine through the Docker SDK with the fields terraform-provider-docker sends
(kreuzwerker/terraform-provider-docker v4.5.0, the provider pulumi-docker 5.x wraps;
`internal/provider/resource_docker_container_funcs.go` resourceDockerContainerCreate,
`resource_docker_network_funcs.go`, `resource_docker_volume.go`, `resource_docker_image_funcs.go`):

- container: created on the default bridge, disconnected from it and connected to each
  `networks_advanced` network with its aliases, the uploads copied in as root-owned files
  (0644, 0744 if executable), then started; `ports` bind `ip` (default 0.0.0.0) and
  `internal/tcp`; `volumes` are Binds `volume:path:rw`; `memory` MB -> bytes; healthcheck
  durations parsed; restart policy with its retry count.
  `wait`: poll until the health status is `healthy`, fail after `wait_timeout` (60 s).
  `attach`: block until the container is not running; the exit code is recorded, **not
  checked** (the provider discards it).
- service (`resource_docker_service_funcs.go` resourceDockerServiceCreate): the spec with its
  configs and secrets, placement, limits, restart policy, endpoint and update/rollback configs;
  with a converge_config, wait until every replica runs (healthy), else remove it and fail.
  Swarm configs and secrets: created from their standard-base64 `data`.
- network (driver, attachable, driver options, labels), volume (name, labels), remote image (found locally:
  here, the stand-in tagged as the reference; e2e/images.py).
- dynamic resources: their own providers, unpickled as the provider host does, `create()`
  against the stack just started.
- `pulumi_command.local.Command` (the swarm's bootstrap; the verification gate, which the e2e
  tests switch off and run themselves): `create` runs through `/bin/sh -c` with its
  environment and stdin; a non-zero exit fails it; stdout and stderr lose their last newline
  (pulumi/pulumi-command provider/pkg/provider/local: `strings.TrimSuffix(stdoutbuf.String(),
  "\n")`).

A second `apply` with the previous `EngineState` behaves like a `pulumi up` with nothing to
change: a resource whose inputs are unchanged keeps its object (dynamic ones are asked
`diff()`); any difference is recorded in `changes` instead of being carried out.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tarfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import dill
import docker
import pulumi
from docker.types import Healthcheck, NetworkingConfig

from e2e.engine import client as engine_client
from e2e.images import tag_as
from policies.program import RecordingMocks, unwrap_secrets
from tests.support.certificates import key_pem, self_signed_pem

DYNAMIC_PREFIX = "pulumi-python:dynamic"
DEFAULT_WAIT_TIMEOUT_S = 60  # resource_docker_container.go: wait_timeout default
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS_NS = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def duration_ns(text: str | None) -> int:
    """Go's time.ParseDuration for the forms the program uses (`10s`, `1m30s`, `500ms`)."""
    if not text:
        return 0
    return int(sum(float(n) * _UNITS_NS[unit] for n, unit in _DURATION.findall(text)))


@dataclass
class Event:
    """Something the harness saw happen to a resource, with its time (monotonic seconds)."""

    at: float
    kind: str  # created | started | healthy | exited
    name: str  # the resource's logical name
    detail: str = ""


@dataclass
class Created:
    """One object the harness made, for teardown and for the next apply."""

    typ: str
    name: str
    host: str
    object_id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class EngineState:
    """What an apply left on the engine: the Pulumi state of this harness."""

    created: dict[tuple[str, str], Created] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


class ApplyError(RuntimeError):
    """A resource the engine could not create as rendered (what would fail `pulumi up`)."""


class EngineMocks(RecordingMocks):
    """Pulumi mocks that create each registered resource on a Docker engine."""

    def __init__(self, built: dict[str, str], state: EngineState | None = None) -> None:
        super().__init__()
        self.built = built
        self.previous = state
        self.state = EngineState()
        self.changes: list[str] = []
        """Resources a second apply would have changed (`type name: why`)."""
        self.exit_codes: dict[str, int] = {}
        """Container name -> exit code of every attached (one-shot) container."""
        self._hosts: dict[str, str] = {}  # provider id -> Docker host URL
        self._clients: dict[str, docker.DockerClient] = {}
        self._lock = threading.Lock()
        self._started = time.monotonic()

    # -- the mock interface --------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.record(args)
        inputs = unwrap_secrets(dict(args.inputs))
        if args.typ == "pulumi:providers:docker":
            self._hosts[f"{args.name}-id"] = inputs["host"]
            return f"{args.name}-id", dict(args.inputs)
        kind = self._kind(args.typ)
        if kind is None:  # components, random values, commands: as the recording mocks answer
            return self.answer(args)
        key = (args.typ, args.name)
        old = self.previous.created.get(key) if self.previous else None
        if old is not None:
            return self._keep(old, args.typ, args.name, inputs)
        local = kind in ("dynamic", "command", "tls_key", "tls_certificate")  # no Docker host
        host = "" if local else self._host(args.provider)
        try:
            object_id, outputs = getattr(self, f"_create_{kind}")(args.name, host, inputs)
        except ApplyError:
            raise
        except Exception as err:
            where = traceback.extract_tb(err.__traceback__)[-1]
            raise ApplyError(f"{args.typ} {args.name}: {err} ({where.filename}:{where.lineno})") from err
        with self._lock:
            self.state.created[key] = Created(args.typ, args.name, host, object_id, inputs, outputs)
        return object_id, {**dict(args.inputs), **outputs}

    # -- per kind ------------------------------------------------------------------------------

    @staticmethod
    def _kind(typ: str) -> str | None:
        if typ.startswith(DYNAMIC_PREFIX):
            return "dynamic"
        return {
            "docker:index/network:Network": "network",
            "docker:index/volume:Volume": "volume",
            "docker:index/remoteImage:RemoteImage": "image",
            "docker:index/container:Container": "container",
            "docker:index/service:Service": "service",
            "docker:index/serviceConfig:ServiceConfig": "config",
            "docker:index/secret:Secret": "secret",
            "command:local:Command": "command",
            "tls:index/privateKey:PrivateKey": "tls_key",
            "tls:index/selfSignedCert:SelfSignedCert": "tls_certificate",
        }.get(typ)

    def _create_tls_key(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        """As pulumi-tls's PrivateKey (ECDSA, the curve named): a PKCS#8 PEM."""
        if inputs.get("algorithm") != "ECDSA" or inputs.get("ecdsaCurve") != "P256":
            raise ApplyError(f"{name}: only ECDSA P256 keys are made here, got {inputs}")
        return f"{name}-id", {"privateKeyPem": key_pem()}

    def _create_tls_certificate(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        """As pulumi-tls's SelfSignedCert: the subject, the SANs and the validity asked for."""
        pem = self_signed_pem(
            inputs["privateKeyPem"],
            inputs["subject"]["commonName"],
            inputs.get("dnsNames") or [],
            inputs.get("ipAddresses") or [],
            hours=int(inputs["validityPeriodHours"]),
            is_ca=bool(inputs.get("isCaCertificate")),
        )
        return f"{name}-id", {"certPem": pem}

    def _create_network(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        network = self.client(host).networks.create(
            inputs["name"],
            driver=inputs.get("driver"),
            attachable=inputs.get("attachable"),
            options=inputs.get("options"),
            labels=_labels(inputs),
            check_duplicate=True,
        )
        return network.id, {}

    def _create_volume(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        volume = self.client(host).volumes.create(name=inputs["name"], labels=_labels(inputs))
        return volume.name, {}

    def _create_image(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        image_id = tag_as(self.client(host), self.built, inputs["name"])
        # repo_digest is "" for an image only built or tagged locally (determineRepoDigest).
        return f"{image_id}{inputs['name']}", {"imageId": image_id, "repoDigest": ""}

    def _create_container(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        api = self.client(host).api
        ports = inputs.get("ports") or []
        check = inputs.get("healthcheck")
        restart = {
            "Name": inputs.get("restart", "no"),
            "MaximumRetryCount": int(inputs.get("maxRetryCount", 0)),
        }
        host_config = api.create_host_config(
            port_bindings={
                f"{int(p['internal'])}/{p.get('protocol', 'tcp')}": (
                    p.get("ip") or "0.0.0.0",
                    int(p["external"]),
                )
                for p in ports
            },
            binds=[_bind(v) for v in inputs.get("volumes") or []],
            restart_policy=None if restart["Name"] == "no" else restart,
            mem_limit=int(inputs["memory"]) * 1024 * 1024 if inputs.get("memory") else None,
            network_mode="bridge",
        )
        container = api.create_container(
            image=inputs["image"],
            name=inputs["name"],
            command=inputs.get("command"),
            entrypoint=inputs.get("entrypoints"),
            environment=inputs.get("envs"),
            labels=_labels(inputs),
            hostname=inputs.get("hostname"),
            user=inputs.get("user"),
            working_dir=inputs.get("workingDir"),
            ports=[(int(p["internal"]), p.get("protocol", "tcp")) for p in ports],
            volumes=[v["containerPath"] for v in inputs.get("volumes") or []],
            healthcheck=healthcheck(check),
            host_config=host_config,
            networking_config=NetworkingConfig({}),
        )
        container_id = container["Id"]
        self._event("created", name)
        networks = inputs.get("networksAdvanced") or []
        if networks:
            api.disconnect_container_from_network(container_id, "bridge")
            for network in networks:
                api.connect_container_to_network(
                    container_id, network["name"], aliases=network.get("aliases")
                )
        for upload in inputs.get("uploads") or []:
            api.put_archive(container_id, "/", _upload_tar(upload))
        outputs: dict[str, Any] = {}
        if inputs.get("start", True):
            api.start(container_id)
            self._event("started", name)
            if inputs.get("wait"):
                self._wait_healthy(
                    api, container_id, name, int(inputs.get("waitTimeout", DEFAULT_WAIT_TIMEOUT_S))
                )
        if inputs.get("attach"):
            result = api.wait(container_id, condition="not-running")
            self.exit_codes[inputs["name"]] = result["StatusCode"]
            self._event("exited", name, str(result["StatusCode"]))
            if inputs.get("logs"):
                outputs["containerLogs"] = api.logs(container_id).decode(errors="replace")
        return container_id, outputs

    def _create_config(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        # `data` is standard base64 (validateStringIsBase64Encoded); the SDK encodes it again.
        created = self.client(host).api.create_config(
            inputs["name"], base64.b64decode(inputs["data"]), labels=_labels(inputs)
        )
        return created["ID"], {}

    def _create_secret(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        created = self.client(host).api.create_secret(
            inputs["name"], base64.b64decode(inputs["data"]), labels=_labels(inputs)
        )
        return created["ID"], {}

    def _create_service(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        """resourceDockerServiceCreate: the spec as createServiceSpec builds it, then, with a
        converge_config, wait until every replica's task is `running` (Swarm holds a task with a
        health check in `starting` until it is healthy); a service that does not converge in
        time is removed and the create fails (DidNotConvergeError)."""
        api = self.client(host).api
        service = api.create_service(**service_spec(inputs))["ID"]
        self._event("created", name)
        converge = inputs.get("convergeConfig")
        if converge:
            replicas = int(((inputs.get("mode") or {}).get("replicated") or {}).get("replicas", 1))
            timeout_s = duration_ns(converge.get("timeout") or "3m") / 1e9
            try:
                self._wait_converged(api, service, replicas, timeout_s)
            except ApplyError as err:
                api.remove_service(service)
                raise ApplyError(f"{name}: {err}") from None
            self._event("healthy", name)
        return service, {}

    def _wait_converged(self, api: docker.APIClient, service: str, replicas: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        seen: list[str] = []
        while time.monotonic() < deadline:
            tasks = api.tasks(filters={"service": service, "desired-state": "running"})
            seen = [
                f"{t['Status']['State']}: {t['Status'].get('Err') or t['Status'].get('Message')}"
                for t in tasks
            ]
            if sum(t["Status"]["State"] == "running" for t in tasks) == replicas:
                return
            time.sleep(1)
        raise ApplyError(f"service did not converge after {timeout_s:.0f} s: {seen}")

    def _create_command(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        """pulumi-command's local.Command: `create` through /bin/sh -c (its default interpreter)
        with its environment and stdin; a non-zero exit fails the resource, with its stderr."""
        done = subprocess.run(
            ["/bin/sh", "-c", inputs["create"]],
            input=inputs.get("stdin"),
            env={**os.environ, **(inputs.get("environment") or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise ApplyError(f"command {name} exited {done.returncode}: {done.stderr.strip()[-500:]}")
        self._event("created", name)
        stdout, stderr = done.stdout.removesuffix("\n"), done.stderr.removesuffix("\n")
        return f"{name}-{uuid.uuid4().hex[:8]}", {"stdout": stdout, "stderr": stderr}

    def _create_dynamic(self, name: str, host: str, inputs: dict) -> tuple[str, dict]:
        provider = _provider(inputs)
        properties = {k: v for k, v in inputs.items() if k != "__provider"}
        result = provider.create(properties)
        self._event("created", name)
        return result.id, {**properties, **(result.outs or {})}

    # -- a second apply ------------------------------------------------------------------------

    def _keep(self, old: Created, typ: str, name: str, inputs: dict) -> tuple[str, dict]:
        if typ.startswith(DYNAMIC_PREFIX):
            olds = {k: v for k, v in old.outputs.items() if k != "__provider"}
            news = {k: v for k, v in inputs.items() if k != "__provider"}
            diff = _provider(inputs).diff(old.object_id, olds, news)
            if diff.changes:
                self.changes.append(f"{typ} {name}: {diff.replaces or 'update'}")
        elif _comparable(old.inputs) != _comparable(inputs):
            changed = sorted(k for k in set(old.inputs) | set(inputs) if old.inputs.get(k) != inputs.get(k))
            self.changes.append(f"{typ} {name}: {changed}")
        with self._lock:
            self.state.created[(typ, name)] = old
        return old.object_id, {**inputs, **old.outputs}

    # -- helpers -------------------------------------------------------------------------------

    def client(self, host: str) -> docker.DockerClient:
        with self._lock:
            if host not in self._clients:
                self._clients[host] = engine_client(host, timeout=300)
            return self._clients[host]

    def _host(self, provider_ref: str) -> str:
        provider_id = provider_ref.rsplit("::", 1)[-1] if provider_ref else ""
        if provider_id not in self._hosts:
            raise ApplyError(f"resource without an explicit Docker provider ({provider_ref!r})")
        return self._hosts[provider_id]

    def _event(self, kind: str, name: str, detail: str = "") -> None:
        with self._lock:
            self.state.events.append(Event(time.monotonic() - self._started, kind, name, detail))

    def _wait_healthy(self, api: docker.APIClient, container_id: str, name: str, timeout_s: int) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            health = api.inspect_container(container_id)["State"].get("Health")
            if health is None:
                raise ApplyError(
                    f"{name}: you have supplied a 'wait' argument, but the container does not have a "
                    "healthcheck defined"
                )
            if health["Status"] == "healthy":
                self._event("healthy", name)
                return
            time.sleep(1)
        raise ApplyError(f"{name}: container failed to be in healthy state within {timeout_s} s")


def healthcheck(check: dict | None) -> Healthcheck | None:
    """A container's or a service's health check inputs, durations parsed as Go does."""
    if not check:
        return None
    return Healthcheck(
        test=check["tests"],
        interval=duration_ns(check.get("interval")),
        timeout=duration_ns(check.get("timeout")),
        start_period=duration_ns(check.get("startPeriod")),
        retries=int(check.get("retries", 0)),
    )


def service_spec(inputs: dict) -> dict[str, Any]:
    """The Docker SDK's create_service arguments for a pulumi-docker Service's inputs
    (resource_docker_service_structures.go: createContainerSpec, createPlacement,
    createResources, createRestartPolicy, createServiceEndpointSpec, createUpdateOrRollbackConfig)."""
    task = inputs["taskSpec"]
    spec = task["containerSpec"]
    check = spec.get("healthcheck")
    refs = {
        "configs": [
            docker.types.ConfigReference(
                c["configId"], c["configName"], c["fileName"], mode=int(c.get("fileMode", 0o444))
            )
            for c in spec.get("configs") or []
        ],
        "secrets": [
            docker.types.SecretReference(
                s["secretId"], s["secretName"], s["fileName"], mode=int(s.get("fileMode", 0o444))
            )
            for s in spec.get("secrets") or []
        ],
    }
    container = docker.types.ContainerSpec(
        image=spec["image"],
        command=spec.get("commands"),
        args=spec.get("args"),
        hostname=spec.get("hostname"),
        env=[f"{k}={v}" for k, v in (spec.get("env") or {}).items()],
        user=spec.get("user"),
        labels={item["label"]: item["value"] for item in spec.get("labels") or []},
        mounts=[
            docker.types.Mount(m["target"], m.get("source"), type=m.get("type", "volume"))
            for m in spec.get("mounts") or []
        ],
        stop_grace_period=duration_ns(spec.get("stopGracePeriod")) or None,
        healthcheck=healthcheck(check),
        **{k: v or None for k, v in refs.items()},
    )
    limits = (task.get("resources") or {}).get("limits") or {}
    restart = task.get("restartPolicy") or {}
    placement = task.get("placement") or {}
    template = docker.types.TaskTemplate(
        container_spec=container,
        resources=docker.types.Resources(mem_limit=int(limits["memoryBytes"]))
        if limits.get("memoryBytes")
        else None,
        restart_policy=docker.types.RestartPolicy(
            condition=restart.get("condition", "any"),
            delay=duration_ns(restart.get("delay")),
            max_attempts=int(restart.get("maxAttempts", 0)),
            window=duration_ns(restart.get("window")),
        ),
        placement=docker.types.Placement(
            constraints=placement.get("constraints"),
            maxreplicas=int(placement["maxReplicas"]) if placement.get("maxReplicas") else None,
        ),
        networks=[
            docker.types.NetworkAttachmentConfig(n.get("id") or n["name"], aliases=n.get("aliases"))
            for n in task.get("networksAdvanceds") or []
        ],
    )
    endpoint = inputs.get("endpointSpec") or {}
    mode = inputs.get("mode") or {}

    def update(config: dict | None, cls: type) -> Any:
        if not config:
            return None
        return cls(
            parallelism=int(config.get("parallelism", 1)),
            delay=duration_ns(config.get("delay")),
            failure_action=config.get("failureAction", "pause"),
            monitor=duration_ns(config.get("monitor")),
            max_failure_ratio=float(config.get("maxFailureRatio", 0)),
            order=config.get("order", "stop-first"),
        )

    return {
        "task_template": template,
        "name": inputs["name"],
        "labels": _labels(inputs),
        "mode": docker.types.ServiceMode("global")
        if mode.get("global")
        else docker.types.ServiceMode("replicated", int((mode.get("replicated") or {}).get("replicas", 1))),
        "endpoint_spec": docker.types.EndpointSpec(
            mode=endpoint.get("mode", "vip"),
            ports={
                int(p["publishedPort"]): (
                    int(p["targetPort"]),
                    p.get("protocol", "tcp"),
                    p.get("publishMode", "ingress"),
                )
                for p in endpoint.get("ports") or []
            }
            or None,
        ),
        "update_config": update(inputs.get("updateConfig"), docker.types.UpdateConfig),
        "rollback_config": update(inputs.get("rollbackConfig"), docker.types.RollbackConfig),
    }


def _provider(inputs: dict) -> Any:
    return dill.loads(base64.b64decode(inputs["__provider"]))  # noqa: S301 (our own providers)


def _bind(volume: dict) -> str:
    """`volume_name-or-host_path:container_path:rw|ro` (volumeSetToDockerVolumes)."""
    source = volume.get("hostPath") or volume["volumeName"]
    return f"{source}:{volume['containerPath']}:{'ro' if volume.get('readOnly') else 'rw'}"


def _labels(inputs: dict) -> dict[str, str]:
    return {item["label"]: item["value"] for item in inputs.get("labels") or []}


def _upload_tar(upload: dict) -> bytes:
    content = (
        base64.b64decode(upload["contentBase64"])
        if upload.get("contentBase64")
        else upload["content"].encode()
    )
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(upload["file"].lstrip("/"))
        info.size = len(content)
        info.mode = 0o744 if upload.get("executable") else 0o644
        info.mtime = int(time.time())
        tar.addfile(info, BytesIO(content))  # uid/gid 0: owned by root, as the provider's tar
    return buffer.getvalue()


def _remove_network(api: docker.APIClient, network_id: str, timeout_s: float = 30) -> None:
    """Remove a network, retrying while it still has endpoints (resourceDockerNetworkDelete
    does, for 30 s), and wait until the engine no longer lists it (a swarm-scoped overlay
    network goes a moment after the call returns)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            api.remove_network(network_id)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as err:
            if "active endpoints" not in str(err) or time.monotonic() > deadline:
                raise
        try:
            api.inspect_network(network_id)
        except docker.errors.NotFound:
            return
        if time.monotonic() > deadline:
            raise ApplyError(f"network {network_id} still listed {timeout_s:.0f} s after its removal")
        time.sleep(0.5)


def _remove_service(api: docker.APIClient, service_id: str, name: str, timeout_s: float = 60) -> None:
    """deleteService with a stop_grace_period: remove the service, then wait until its task
    containers are gone (their volumes and network can go only after them)."""
    api.remove_service(service_id)
    deadline = time.monotonic() + timeout_s
    label = f"com.docker.swarm.service.name={name}"
    while api.containers(all=True, filters={"label": label}):
        if time.monotonic() > deadline:
            raise ApplyError(f"service {name}: task containers still there {timeout_s:.0f} s after removal")
        time.sleep(0.5)


def _comparable(inputs: dict) -> str:
    return json.dumps(inputs, sort_keys=True, default=str)


def teardown(state: EngineState, keep_volumes: frozenset[str] = frozenset()) -> list[str]:
    """Remove every Docker object the apply made, dependants first (what `pulumi destroy`
    does for them), but the volumes named in `keep_volumes` (retain_on_delete); the dynamic
    resources' objects live in those services and go with them. Returns what failed."""
    failures: list[str] = []
    order = {
        "docker:index/service:Service": 0,
        "docker:index/container:Container": 1,
        "docker:index/serviceConfig:ServiceConfig": 2,
        "docker:index/secret:Secret": 2,
        "docker:index/network:Network": 3,
        "docker:index/volume:Volume": 4,
    }
    for created in sorted((c for c in state.created.values() if c.typ in order), key=lambda c: order[c.typ]):
        client = engine_client(created.host)
        try:
            if created.typ.endswith("Service"):
                _remove_service(client.api, created.object_id, created.inputs["name"])
            elif created.typ.endswith("ServiceConfig"):
                client.api.remove_config(created.object_id)
            elif created.typ.endswith("Secret"):
                client.api.remove_secret(created.object_id)
            elif created.typ.endswith("Container"):
                client.api.remove_container(created.object_id, force=True, v=True)
            elif created.typ.endswith("Network"):
                _remove_network(client.api, created.object_id)
            elif created.inputs["name"] not in keep_volumes:
                client.api.remove_volume(created.object_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            failures.append(f"{created.typ} {created.name}: {err}")
    return failures
