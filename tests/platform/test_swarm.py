"""The swarm the program makes of the hosts: its commands under mocks (where each runs, in what
order, the join token kept secret, nothing on destroy), and its scripts run for real by
/bin/sh against a docker CLI stand-in that answers as the engine would (the real engine runs
them in e2e/)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.platform.swarm import INVITATION_SCRIPT, LABEL_SCRIPT, WORKER_SCRIPT, manager_script
from tests.harness import contains_secret_wrapper, unwrap_secrets

LOCAL = "command:local:Command"
REMOTE = "command:remote:Command"


def test_a_local_engine_becomes_a_single_node_swarm(program):
    run = program("dev")
    swarm = {c.name: c for c in run.of_type(LOCAL) if c.name.startswith("docker-swarm")}
    assert set(swarm) == {"docker-swarm-manager", "docker-swarm-labels"}
    manager = swarm["docker-swarm-manager"]
    assert manager.inputs["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert "docker swarm init --advertise-addr 127.0.0.1" in manager.inputs["create"]
    assert swarm["docker-swarm-labels"].inputs["stdin"] == "docker-swarm-manager-stdout\n"
    assert run.depends_on["docker-swarm-labels"] == {"docker-swarm-manager"}


def test_ssh_hosts_join_the_first_one_over_ssh_with_a_secret_token(program):
    run = program("prod")
    commands = {c.name: c for c in run.of_type(REMOTE) if c.name.startswith("docker-swarm")}
    assert set(commands) == {
        "docker-swarm-manager", "docker-swarm-join-token", "docker-swarm-worker-1",
        "docker-swarm-worker-2", "docker-swarm-labels",
    }  # fmt: skip
    hosts = {name: c.plain("connection")["host"] for name, c in commands.items()}
    assert hosts["docker-swarm-manager"] == hosts["docker-swarm-labels"] == "docker-1.example.internal"
    assert hosts["docker-swarm-worker-2"] == "docker-3.example.internal"
    assert commands["docker-swarm-worker-1"].plain("connection")["user"] == "deploy"
    # Let Docker choose the address a remote manager advertises (it names the choices if it cannot).
    assert "--advertise-addr" not in commands["docker-swarm-manager"].inputs["create"]
    for worker in ("docker-swarm-worker-1", "docker-swarm-worker-2"):
        stdin = commands[worker].inputs["stdin"]
        assert contains_secret_wrapper(stdin) and unwrap_secrets(stdin) == "docker-swarm-join-token-stdout\n"
        assert run.depends_on[worker] == {"docker-swarm-join-token"}
    assert run.depends_on["docker-swarm-labels"] == {
        "docker-swarm-manager",
        "docker-swarm-worker-1",
        "docker-swarm-worker-2",
    }
    # Nothing runs on destroy: leaving would take every other stack on the hosts down.
    assert all("delete" not in c.inputs for c in commands.values())


FAKE_DOCKER = r"""#!/bin/sh
# The docker CLI as these scripts use it, answering from $STATE; every call logged.
echo "$*" >> "$LOG"
case "$*" in
  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}") cat "$STATE" ;;
  "info --format {{.Swarm.LocalNodeState}}") cut -d' ' -f1 "$STATE" ;;
  "info --format {{.Swarm.NodeID}}") echo node-id-here ;;
  "info --format {{.Swarm.NodeAddr}}") echo 10.0.0.1 ;;
  "swarm join-token -q worker") echo SWMTKN-1-secret ;;
  "swarm init"*|"swarm join"*) echo "active true" > "$STATE" ;;
  "node update"*) ;;
  *) echo "unexpected: docker $*" >&2; exit 9 ;;
esac
"""


@pytest.fixture
def docker_cli(tmp_path: Path):
    """Run a script with the stand-in CLI first on PATH, in a given swarm state."""
    (tmp_path / "docker").write_text(FAKE_DOCKER)
    (tmp_path / "docker").chmod(0o755)

    def run(script: str, state: str, stdin: str = "") -> tuple[subprocess.CompletedProcess, list[str]]:
        (tmp_path / "state").write_text(state + "\n")
        log = tmp_path / "log"
        log.write_text("")
        env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "STATE": str(tmp_path / "state"),
               "LOG": str(log)}  # fmt: skip
        done = subprocess.run(["/bin/sh", "-c", script], input=stdin, env=env, capture_output=True, text=True)
        return done, log.read_text().splitlines()

    return run


def test_the_manager_script_initialises_only_a_host_in_no_swarm(docker_cli):
    done, calls = docker_cli(manager_script("127.0.0.1"), "inactive false")
    assert done.returncode == 0 and done.stdout == "node-id-here\n"
    assert "swarm init --advertise-addr 127.0.0.1" in calls
    done, calls = docker_cli(manager_script("127.0.0.1"), "active true")
    assert done.returncode == 0 and not any(c.startswith("swarm init") for c in calls)


def test_the_manager_script_refuses_a_host_that_is_only_a_worker(docker_cli):
    done, calls = docker_cli(manager_script(None), "active false")
    assert done.returncode == 1 and "must be a swarm manager" in done.stderr
    assert not any(c.startswith("swarm") for c in calls)


def test_read_needs_the_newline_pulumi_command_trims_from_stdout(docker_cli):
    done, calls = docker_cli(WORKER_SCRIPT, "inactive false", stdin="SWMTKN-1-secret 10.0.0.1")
    assert done.returncode != 0 and not any(c.startswith("swarm join") for c in calls)


def test_a_worker_joins_with_the_token_from_stdin_once(docker_cli):
    done, calls = docker_cli(WORKER_SCRIPT, "inactive false", stdin="SWMTKN-1-secret 10.0.0.1\n")
    assert done.returncode == 0 and "swarm join --token SWMTKN-1-secret 10.0.0.1:2377" in calls
    done, calls = docker_cli(WORKER_SCRIPT, "active false", stdin="SWMTKN-1-secret 10.0.0.1\n")
    assert done.returncode == 0 and not any(c.startswith("swarm join") for c in calls)


def test_the_invitation_is_the_token_and_the_managers_address(docker_cli):
    done, _ = docker_cli(INVITATION_SCRIPT, "active true")
    assert done.stdout == "SWMTKN-1-secret 10.0.0.1\n"


def test_each_node_is_labelled_with_its_host_index(docker_cli):
    done, calls = docker_cli(LABEL_SCRIPT, "active true", stdin="n0 n1 n1\n")
    assert done.returncode == 0
    assert calls == [
        "node update --label-add rag-infra.host.0=true n0",
        "node update --label-add rag-infra.host.1=true n1",
        "node update --label-add rag-infra.host.2=true n1",
    ]


def test_a_tcp_engine_is_driven_locally_and_advertises_what_docker_chooses(program):
    run = program("dev", overrides={"dockerHosts": ["tcp://docker-1.example.internal:2376"]})
    manager = run.named("docker-swarm-manager")
    assert manager.typ == LOCAL and manager.inputs["environment"]["DOCKER_HOST"].startswith("tcp://")
    assert "--advertise-addr" not in manager.inputs["create"]
