"""The diagrams are drawn from the stack itself: regenerated, they must equal the committed ones
(like a lockfile), and PlantUML must render every one."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from docs.diagrams.__main__ import OUT, render_svg, write_diagrams
from docs.diagrams.views import VIEWS

STACKS = ["dev", "prod"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    out = tmp_path_factory.mktemp("diagrams")
    paths = [p for stack in STACKS for p in write_diagrams(stack, out)]
    render_svg(paths)
    return out


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("view", list(VIEWS))
def test_the_committed_diagrams_are_the_stack_as_it_is(fresh, stack, view):
    name = f"{stack}-{view}"
    committed = OUT / f"{name}.puml"
    assert committed.exists(), f"run `venv/bin/python -m docs.diagrams` and commit {committed.name}"
    assert committed.read_text() == (fresh / f"{name}.puml").read_text(), (
        f"{committed.name} is out of date: run `venv/bin/python -m docs.diagrams` and commit the result"
    )
    assert (OUT / f"{name}.svg").read_bytes() == (fresh / f"{name}.svg").read_bytes()


def test_plantuml_refuses_a_broken_file(tmp_path):
    broken = tmp_path / "broken.puml"
    broken.write_text('@startuml\ncomponent "a" as a\na -->\n@enduml\n')
    result = subprocess.run(
        [shutil.which("plantuml") or "plantuml", "-checkonly", str(broken)], capture_output=True
    )
    assert result.returncode != 0


def _placement(deployment: str) -> dict[str, str]:
    """container name -> host, from a deployment view."""
    placed, host = {}, None
    for line in deployment.splitlines():
        if line.startswith("node "):
            host = line.split('"')[1]
        found = re.search(r"<b>(rag-infra-\w+-[\w-]+)</b>", line)
        if found and host:
            placed[found[1]] = host
    return placed


def test_prod_shows_each_quorum_member_on_its_own_host():
    placed = _placement((OUT / "prod-deployment.puml").read_text())
    for members in (["qdrant-0", "qdrant-1", "qdrant-2"], ["safekeeper-0", "safekeeper-1", "safekeeper-2"]):
        hosts = {placed[f"rag-infra-prod-{member}"] for member in members}
        assert len(hosts) == 3, (members, hosts)


def test_a_fourth_safekeeper_changes_the_drawing(tmp_path):
    write_diagrams("prod", tmp_path, overrides={"neon": {"safekeepers": 4, "memoryMb": 2048}})
    drawn = (tmp_path / "prod-deployment.puml").read_text()
    assert drawn != (OUT / "prod-deployment.puml").read_text()
    assert _placement(drawn)["rag-infra-prod-safekeeper-3"] == "ssh://deploy@docker-1.example.internal"
    assert "safekeeper quorum (4, majority 3)" in (tmp_path / "prod-neon-internals.puml").read_text()
