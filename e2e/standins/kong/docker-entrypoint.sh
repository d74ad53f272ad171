#!/usr/bin/env bash
# As docker-kong's docker-entrypoint.sh: `kong docker-start` starts Kong in the foreground;
# anything else runs as given.
set -Eeo pipefail
if [[ "$1" == "kong" && "$2" == "docker-start" ]]; then
    exec kong start
fi
exec "$@"
