#!/bin/bash
# Stand-in for the grafana image's /run.sh: each GF_<option>__FILE names a file whose content
# becomes GF_<option> (setting both is refused, as the image does); then the server starts.
set -euo pipefail
for variable in $(env | sed -n 's/^\(GF_[A-Za-z0-9_]*\)__FILE=.*/\1/p'); do
    file_variable="${variable}__FILE"
    if [ -n "${!variable:-}" ]; then
        echo "ERROR: Both $variable and $file_variable are set (but are exclusive)" >&2
        exit 1
    fi
    value="$(< "${!file_variable}")"
    export "$variable=$value"
    unset "$file_variable"
done
exec python3 /usr/share/grafana/grafana.py "$@"
