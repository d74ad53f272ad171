"""SSH tunnels to the loopback-only operator ports, derived from the stack file."""

from __future__ import annotations

from components.platform.tunnels import forwards, main, ssh_commands
from components.settings import parse_settings

HOSTS = ["ssh://deploy@docker-1.example.internal", "ssh://deploy@docker-2.example.internal:2222",
         "ssh://deploy@docker-3.example.internal"]  # fmt: skip


def test_each_port_is_forwarded_from_the_host_it_is_published_on():
    settings = parse_settings(
        {"dockerHosts": HOSTS, "neon": {"safekeepers": 3}, "kong": {"cors": {"origins": ["*"]}}}, stack="prod"
    )
    assert forwards(settings) == {
        HOSTS[0]: [1234, 6400, 7676, 8001, 8100, 9898],
        HOSTS[1]: [7677],
        HOSTS[2]: [7678],
    }
    second = ssh_commands(settings)[1]
    assert second[-1] == "deploy@docker-2.example.internal" and second[second.index("-p") + 1] == "2222"
    assert "127.0.0.1:7677:127.0.0.1:7677" in second


def test_local_hosts_need_no_tunnel():
    assert ssh_commands(parse_settings({}, stack="dev")) == []


def test_the_command_prints_the_prod_tunnels(capsys):
    assert main(["--stack", "prod"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("ssh -f -N -o ExitOnForwardFailure=yes") for line in lines)


def test_an_unknown_stack_is_one_line(capsys):
    assert main(["--stack", "nope"]) == 2
    assert capsys.readouterr().err.startswith("tunnels: ")
