"""Stack files are read as the Pulumi CLI reads them (YAML 1.2 core schema), and `policies.check`
tells a config error (exit 2, one line) from a violation (exit 1)."""

from __future__ import annotations

from contextlib import contextmanager

from policies.program import read_yaml
from tests.harness import ROOT
from tests.policies.test_policies import run_check


@contextmanager
def stack_file(name: str, text: str):
    path = ROOT / f"Pulumi.{name}.yaml"
    path.write_text(text)
    try:
        yield name
    finally:
        path.unlink()


def test_the_core_schema_keeps_words_and_timestamps_as_strings(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text("a: off\nb: yes\nc: 2026-11-01T11:00:00Z\nd: true\ne: 010\nf: null\n")
    assert read_yaml(path) == {
        "a": "off",
        "b": "yes",
        "c": "2026-11-01T11:00:00Z",
        "d": True,
        "e": 10,
        "f": None,
    }


def test_unquoted_off_and_timestamps_read_as_the_cli_reads_them():
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace('database: "off"', "database: off")
    branch = "\n    branches:\n      - name: pitr\n        timestamp: 2026-11-01T11:00:00Z"
    text = text.replace(
        "  rag-infra:neon:\n    safekeepers: 1", "  rag-infra:neon:\n    safekeepers: 1" + branch
    )
    with stack_file("yaml-test-dev", text) as name:
        result = run_check(name)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_a_yaml_syntax_error_names_the_file_and_line_and_exits_2():
    with stack_file("yaml-test-broken", "config:\n  rag-infra:qdrant:\n    nodes: [3\n") as name:
        result = run_check(name)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("policies.check: Pulumi.yaml-test-broken.yaml:4:")
    assert "Traceback" not in result.stderr


def test_a_config_error_exits_2_and_a_violation_1():
    bad = (ROOT / "Pulumi.dev.yaml").read_text().replace("nodes: 3", "nodes: 4")
    with stack_file("yaml-test-bad-config", bad) as name:
        result = run_check(name)
    assert result.returncode == 2
    assert result.stderr.strip() == "policies.check: rag-infra:qdrant.nodes must be an odd number >= 1, got 4"
