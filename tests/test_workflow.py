"""The CI workflow, checked by a real linter (actionlint) and read for what it must do."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.harness import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "pulumi.yml"


def actionlint(path: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or "actionlint"
    return subprocess.run([binary, "-no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_the_workflow_passes_actionlint():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_reads_it(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("${{ matrix.stack }}", "${{ matrix.stacks }}", 1))
    result = actionlint(broken)
    assert result.returncode != 0 and "stacks" in result.stdout


def _steps() -> list[dict]:
    document = yaml.safe_load(WORKFLOW.read_text())
    return document["jobs"]["stack"]["steps"]


def test_the_workflow_does_what_a_deployment_needs():
    text = WORKFLOW.read_text()
    steps = {step.get("name", step.get("uses")): step for step in _steps()}
    # Stacks that do not exist yet are created; one passphrase per stack.
    assert (
        'pulumi stack select --create "${{ matrix.stack }}"' in steps["Select the stack, or create it"]["run"]
    )
    assert "secrets.PULUMI_PASSPHRASE_PROD" in text and "secrets.PULUMI_PASSPHRASE_DEV" in text
    # ssh:// hosts: an agent, known hosts and shared connections; tunnels opened by the workflow.
    ssh = steps["SSH agent, known hosts and connection sharing for ssh:// Docker hosts"]["run"]
    assert (
        "known_hosts" in ssh and "ssh-add" in ssh and "ControlMaster auto" in ssh and "ControlPersist" in ssh
    )
    tunnels = next(s for name, s in steps.items() if name and name.startswith("Tunnels"))
    assert "python -m components.platform.tunnels" in tunnels["run"] and "--run" in tunnels["run"]
    # The preview is posted on the pull request; a scheduled drift check expects no changes.
    preview = steps["Preview, posted on the pull request"]
    assert preview["with"]["comment-on-pr"] is True and preview["with"]["command"] == "preview"
    assert "--expect-no-changes" in steps["Drift check (fails when the stack differs from the code)"]["run"]
    assert yaml.safe_load(text)[True]["schedule"]  # `on:` reads as True in YAML 1.1
