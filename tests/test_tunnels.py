"""SSH tunnels to the loopback-only operator ports, derived from the stack file."""

from __future__ import annotations

from components.platform.tunnels import forwards, main, ssh_commands
from components.settings import parse_settings

HOSTS = ["ssh://deploy@docker-1.example.internal", "ssh://deploy@docker-2.example.internal:2222",
         "ssh://deploy@docker-3.example.internal"]  # fmt: skip


def test_every_operator_port_is_forwarded_from_the_first_host():
    """OperatorAccess publishes them all on the first host's loopback, whatever host a member
    runs on; a port on the first host is reached with its own port number (and `-p` kept)."""
    hosts = [HOSTS[1], HOSTS[0], HOSTS[2]]
    settings = parse_settings(
        {"dockerHosts": hosts, "neon": {"safekeepers": 3}, "kong": {"cors": {"origins": ["*"]}}}, stack="prod"
    )
    # The store's single MinIO node (objectStorage.apiPort); Grafana, Prometheus, Alertmanager.
    assert forwards(settings) == {
        hosts[0]: [1234, 3000, 6400, 7676, 7677, 7678, 8001, 8100, 9000, 9090, 9093, 9898]
    }
    (command,) = ssh_commands(settings)
    assert command[-1] == "deploy@docker-2.example.internal" and command[command.index("-p") + 1] == "2222"
    assert "127.0.0.1:7678:127.0.0.1:7678" in command


def test_only_the_enabled_tiers_ports():
    settings = parse_settings(
        {
            "dockerHosts": HOSTS,
            "features": {"kongGateway": False, "monitoring": False},
            "neon": {"safekeepers": 1},
        },
        stack="prod",
    )
    assert forwards(settings) == {HOSTS[0]: [1234, 6400, 7676, 9000, 9898]}


def test_each_node_of_a_distributed_store_has_its_port():
    store = {"nodes": 3, "drivesPerNode": 2, "apiPort": 9100}
    settings = parse_settings({"dockerHosts": HOSTS, "neon": {"objectStorage": store}}, stack="prod")
    assert {9100, 9101, 9102} <= set(forwards(settings)[HOSTS[0]])


def test_local_hosts_need_no_tunnel():
    assert ssh_commands(parse_settings({}, stack="dev")) == []


def test_the_command_prints_the_prod_tunnels(capsys):
    assert main(["--stack", "prod"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and all(line.startswith("ssh -f -N -o ExitOnForwardFailure=yes") for line in lines)


def test_an_unknown_stack_is_one_line(capsys):
    assert main(["--stack", "nope"]) == 2
    assert capsys.readouterr().err.startswith("tunnels: ")
