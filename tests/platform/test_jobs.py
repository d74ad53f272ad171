"""One-shot jobs: their host script run for real by /bin/sh against a docker CLI stand-in that
exits like `docker run` (with the container's code): retried, then failing the command (and
`pulumi up`) with its output; the environment read once from stdin, never on a command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.platform.jobs import job_script

FAKE_DOCKER = r"""#!/bin/sh
# `docker run`: the env file it is given on stdin is kept; the exit code comes from $PLAN,
# one line per attempt (the last line repeats).
case "$1" in rm) echo "$*" >> "$LOG.rm"; exit 0 ;; esac
echo "$*" >> "$LOG"
cat >> "$ENVS"
code=$(head -n 1 "$PLAN")
[ "$(wc -l < "$PLAN")" -gt 1 ] && sed -i 1d "$PLAN"
echo "job output, attempt ending with $code"
exit "$code"
"""


@pytest.fixture
def run_job(tmp_path: Path, monkeypatch):
    (tmp_path / "docker").write_text(FAKE_DOCKER)
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setattr("components.platform.jobs.RETRY_PAUSE_S", 0)

    def run(plan: list[int], attempts: int = 3) -> tuple[subprocess.CompletedProcess, list[str], str]:
        (tmp_path / "plan").write_text("".join(f"{code}\n" for code in plan))
        for name in ("log", "envs"):
            (tmp_path / name).write_text("")
        script = job_script(
            "rag-infra-dev-minio-bucket", "rag-infra-dev", "sha256:mc", "mc mb x", {"a": "b"}, attempts
        )
        env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PLAN": str(tmp_path / "plan"),
               "LOG": str(tmp_path / "log"), "ENVS": str(tmp_path / "envs")}  # fmt: skip
        done = subprocess.run(
            ["/bin/sh", "-c", script],
            input="MINIO_ROOT_PASSWORD=s3cret\n",
            env=env,
            capture_output=True,
            text=True,
        )
        return done, (tmp_path / "log").read_text().splitlines(), (tmp_path / "envs").read_text()

    return run


def test_a_job_that_succeeds_runs_once(run_job, tmp_path):
    done, calls, envs = run_job([0])
    # A container left by an interrupted run is removed first, so the name is free.
    assert (tmp_path / "log.rm").read_text() == "rm -f rag-infra-dev-minio-bucket\n"
    assert done.returncode == 0 and len(calls) == 1
    assert calls[0].startswith(
        "run --rm --name rag-infra-dev-minio-bucket --network rag-infra-dev --label a=b"
    )
    assert "--env-file /dev/stdin --entrypoint sh sha256:mc -c mc mb x" in calls[0]
    assert envs == "MINIO_ROOT_PASSWORD=s3cret\n" and "s3cret" not in calls[0]


def test_a_job_is_retried_and_every_attempt_gets_the_environment(run_job):
    done, calls, envs = run_job([1, 1, 0])
    assert done.returncode == 0 and len(calls) == 3
    assert envs == "MINIO_ROOT_PASSWORD=s3cret\n" * 3


def test_a_job_that_keeps_failing_fails_the_command_with_its_output(run_job):
    done, calls, _ = run_job([1], attempts=3)
    assert done.returncode == 1 and len(calls) == 3
    assert "failed 3 times" in done.stderr and "attempt ending with 1" in done.stdout


def test_the_exit_code_counts_not_the_output(run_job):
    done, calls, _ = run_job([2, 0], attempts=1)
    assert done.returncode == 1 and len(calls) == 1
