#!/usr/bin/env bash
# The end-to-end tests from a fresh Debian machine, as root: installs Docker (Debian's docker.io)
# and debootstrap when missing, starts a private dockerd under a temporary folder, builds the
# stand-in images (the base rootfs is cached in ~/.cache/rag-infra-e2e by its package list),
# runs e2e/, and stops dockerd when done, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # a list of package names
    apt-get install -y -qq $missing >/dev/null
fi
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/pip install -q -r requirements.txt -r requirements-dev.txt

RAG_E2E_DOCKER_DIR=$(mktemp -d /tmp/rag-e2e-XXXXXX)  # short: a socket path has 107 bytes at most
export RAG_E2E_DOCKER_DIR
cleanup() {
    venv/bin/python -m e2e.engine stop "$RAG_E2E_DOCKER_DIR" || true
    rm -rf "$RAG_E2E_DOCKER_DIR" || true
}
trap cleanup EXIT
SECONDS=0
venv/bin/python -m e2e.engine start "$RAG_E2E_DOCKER_DIR" >/dev/null
venv/bin/python -m e2e.images "$RAG_E2E_DOCKER_DIR"
echo "e2e: engine and stand-in images ready in ${SECONDS} s"
# Arguments (a test file, `-k`, `--durations=10`) replace the default of every e2e test.
venv/bin/python -m pytest -q -p no:cacheprovider "${@:-e2e}"
