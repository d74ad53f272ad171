#!/usr/bin/env bash
# As qdrant's tools/entrypoint.sh: run ./qdrant with the container's arguments.
set -euo pipefail
exec ./qdrant "$@"
