#!/bin/bash
# First start (POSTGRES_* or POSTGRES_*_FILE, read as the official file_env does): initdb as
# POSTGRES_USER with POSTGRES_PASSWORD (refused without one, as the official image refuses),
# POSTGRES_DB created, every host allowed with scram-sha-256; then the server in the foreground,
# as the postgres user, listening on every interface.
set -euo pipefail
if [ "${1:-}" != postgres ]; then exec "$@"; fi
# file_env, as the official entrypoint: POSTGRES_PASSWORD (and USER, DB) from a *_FILE.
for var in POSTGRES_PASSWORD POSTGRES_USER POSTGRES_DB; do
    file_var="${var}_FILE"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        echo >&2 "error: both $var and $file_var are set (but are exclusive)"
        exit 1
    fi
    if [ -n "${!file_var:-}" ]; then
        export "$var"="$(< "${!file_var}")"
        unset "$file_var"
    fi
done
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "Error: Database is uninitialized and superuser password is not specified." >&2
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
shift
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
