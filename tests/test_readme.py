"""README.md's test command is the one CI runs, and it documents every config key and output."""

import re

import yaml

from tests.harness import ROOT, run_program


def _readme_command(marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    block = readme.split(f"<!-- {marker} -->\n", 1)[1]
    assert block.startswith("```bash\n"), f"the fenced block must follow <!-- {marker} --> at once"
    return re.search(r"```bash\n(.+?)\n```", block, re.S).group(1).strip()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"TEST_COMMAND='{_readme_command('test-command')}'" in ci


def test_ci_runs_the_readme_e2e_command_after_the_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    command = _readme_command("e2e-command")
    assert f"E2E_COMMAND='{command}'" in ci
    assert ci.index('bash -c "$TEST_COMMAND"') < ci.index('bash -c "$E2E_COMMAND"')


def test_every_config_key_is_documented():
    readme = (ROOT / "README.md").read_text()
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    for key, spec in project["config"].items():
        assert spec.get("description"), key
        assert f"`{key}`" in readme, f"README does not document {key}"


def test_every_output_is_documented():
    readme = (ROOT / "README.md").read_text()
    for name in run_program("dev").outputs:
        assert f"`{name}`" in readme, f"README does not document output {name}"
