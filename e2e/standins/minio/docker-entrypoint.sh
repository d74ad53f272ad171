#!/bin/sh
# As minio's dockerscripts/docker-entrypoint.sh: any first argument but `minio` gets `minio` put
# in front of it (`server /data ...` runs `minio server /data ...`; so would `sh -c ...`).
if [ "${1}" != "minio" ] && [ -n "${1}" ]; then
    set -- minio "$@"
fi
exec "$@"
