"""A stack deployed on the test engine by the program itself, and what the tests ask of it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from e2e import engine as dockerd
from e2e.apply import EngineMocks, EngineState, teardown
from policies.program import ROOT, ProgramRun, run_program

# Registration threads: the engine creates up to 10 resources at once (`pulumi up --parallel`
# defaults to that and more); waits for health hold a thread each.
THREADS = 16


@dataclass
class Engine:
    """The private dockerd and the stand-in images built on it."""

    root: Path
    client: docker.DockerClient
    built: dict[str, str]

    def host_urls(self, count: int) -> list[str]:
        """`count` distinct Docker host URLs for the same engine (a stack's hosts squeezed onto
        one machine): the socket and symlinks to it."""
        urls = [dockerd.base_url(self.root)]
        for index in range(1, count):
            link = self.root / f"host-{index}.sock"
            if not link.is_symlink():
                link.symlink_to(dockerd.socket_path(self.root))
            urls.append(f"unix://{link}")
        return urls


@dataclass
class Deployment:
    """One `pulumi up` of a stack on the engine, as the harness carried it out."""

    engine: Engine
    stack: str
    overrides: dict[str, Any]
    secrets: dict[str, str]
    run: ProgramRun
    mocks: EngineMocks
    history: list[EngineMocks] = field(default_factory=list)

    @property
    def state(self) -> EngineState:
        return self.mocks.state

    def container(self, docker_name: str) -> docker.models.containers.Container:
        """The container of that name, or the running task container of the service of that
        name (the newest, when Swarm is replacing one)."""
        client = self.engine.client
        try:
            return client.containers.get(docker_name)
        except docker.errors.NotFound:
            tasks = client.containers.list(filters={"label": f"com.docker.swarm.service.name={docker_name}"})
            if not tasks:
                raise
            return max(tasks, key=lambda c: c.attrs["Created"])

    @property
    def network_name(self) -> str:
        return self.run.of_type("docker:index/network:Network")[0].inputs["name"]

    def reapply(self) -> EngineMocks:
        """The same program and config again, over this deployment's state (a second `pulumi up`)."""
        mocks = EngineMocks(self.engine.built, self.state)
        run_program(self.stack, self.overrides, self.secrets, mocks=mocks, threads=THREADS)
        self.history.append(mocks)
        return mocks

    def verify(self, *flags: str, outputs_file: Path) -> tuple[int, dict, str]:
        """`python -m verify` on this stack, as an operator runs it: the outputs from a file, the
        engine as the Docker host. Returns the exit code, the JSON report and what it printed."""
        outputs_file.write_text(json.dumps(self.run.outputs))
        command = [
            sys.executable,
            "-m",
            "verify",
            "--stack",
            self.stack,
            "--outputs",
            str(outputs_file),
            "--json",
        ]
        for host in self.overrides["dockerHosts"]:
            command += ["--docker-host", host]
        done = subprocess.run([*command, *flags], capture_output=True, text=True, cwd=ROOT, timeout=600)
        report = json.loads(done.stdout) if done.stdout.strip() else {}
        return done.returncode, report, done.stderr

    def destroy(self) -> list[str]:
        """Remove what the deployment made, keeping the volumes the program retains on delete."""
        kept = frozenset(
            r.inputs["name"]
            for r in self.run.of_type("docker:index/volume:Volume")
            if r.name in self.run.retained
        )
        return teardown(self.state, kept)

    def wait_healthy(self, timeout_s: float = 180) -> dict[str, str]:
        """Every long-running container's (and service task's) health once all are healthy or
        the time is up."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = {}
            for resource in self.run.workloads:
                if resource.inputs.get("attach"):
                    continue
                try:
                    state = self.container(resource.inputs["name"]).attrs["State"]
                except docker.errors.NotFound:  # a service between two tasks
                    status[resource.inputs["name"]] = "no task running"
                    continue
                status[resource.inputs["name"]] = (state.get("Health") or {}).get("Status", state["Status"])
            if all(s == "healthy" for s in status.values()) or time.monotonic() > deadline:
                return status
            time.sleep(2)


def deploy(
    engine: Engine, stack: str, overrides: dict[str, Any], secrets: dict[str, str] | None = None
) -> Deployment:
    """Run the program for `stack` with the engine's mocks: every resource is created for real."""
    mocks = EngineMocks(engine.built)
    secrets = secrets or {}
    try:
        run = run_program(stack, overrides, secrets, mocks=mocks, threads=THREADS)
    except BaseException:
        teardown(mocks.state)  # a failed `up` in a test leaves nothing behind for the next
        raise
    return Deployment(engine, stack, overrides, secrets, run, mocks)
