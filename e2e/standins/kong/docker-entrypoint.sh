#!/usr/bin/env bash
# As docker-kong's docker-entrypoint.sh: for `kong …`, every KONG_<option>_FILE is read into
# KONG_<option> (file_env; both set is an error), then `kong docker-start` starts Kong in the
# foreground; anything else runs as given.
set -Eeo pipefail
file_env() {
    local var=$1 file_var="${1}_FILE"
    if [ "${!var:-}" ] && [ "${!file_var:-}" ]; then
        echo >&2 "error: both $var and $file_var are set (but are exclusive)"
        exit 1
    fi
    if [ "${!file_var:-}" ]; then
        export "$var"="$(< "${!file_var}")"
        unset "$file_var"
    fi
}
if [[ "$1" == "kong" ]]; then
    for file_var in $(compgen -e | grep '^KONG_.*_FILE$' || true); do
        file_env "${file_var%_FILE}"
    done
    if [[ "$2" == "docker-start" ]]; then
        exec kong start
    fi
fi
exec "$@"
