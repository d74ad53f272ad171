#!/usr/bin/env bash
# A program of Debian sid (newer than this Debian 12 host) in a folder of its own, for the tests
# that check rendered files with the release line the images run. The system's apt state and
# packages are left alone. Idempotent.
#
#   bash .ci/sid-binary.sh DEST BINARY VERSION_REGEX PACKAGE...
#   e.g. bash .ci/sid-binary.sh /opt/nginx-1.30 usr/sbin/nginx 'nginx/1\.30\.' nginx libc6 …
#
# VERSION_FLAG (default -V) is what makes BINARY print its version.
#
# sid's libraries need a newer glibc than Debian 12's, so sid's own glibc and loader come along
# (list libc6 among the packages) and the binary is pointed at them (patchelf, unpacked from
# Debian 12, not installed).
set -euo pipefail
DEST=$1 BINARY=$2 VERSION=$3
shift 3
ROOT=$DEST/root
# `-V` prints the version for both nginx and pgbouncer. Its output is read whole before it is
# matched: `prog -V | grep -q` (or `| head`) can kill prog with SIGPIPE, which pipefail turns
# into a failure of the whole script.
installed_version() { "$ROOT/$BINARY" "${VERSION_FLAG:--V}" 2>&1 || true; }
if [ -x "$ROOT/$BINARY" ] && grep -q "$VERSION" <<<"$(installed_version)"; then
    exit 0
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}  # the mirror apt already uses here
APT=$DEST/.apt
rm -rf "$DEST"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs" "$ROOT"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR sid main" > "$APT/sources.list"
cat > "$APT/apt.conf" <<CONF
Dir::Etc::SourceList "$APT/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "$APT/lists";
Dir::Cache "$APT/cache";
Dir::State::status "/dev/null";
Acquire::Languages "none";
CONF
(
    export APT_CONFIG=$APT/apt.conf
    apt-get -qq -o APT::Sandbox::User=root update
    cd "$APT/debs"
    apt-get -qq -o APT::Sandbox::User=root download "$@"
)
for deb in "$APT"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
PATCHELF=$(command -v patchelf || true)
if [ -z "$PATCHELF" ]; then
    # Debian 12's patchelf (it runs on this host), from the system's package lists.
    apt-cache show patchelf >/dev/null 2>&1 || apt-get -qq update
    (cd "$APT" && apt-get -qq -o APT::Sandbox::User=root download patchelf && dpkg-deb -x patchelf_*.deb patchelf)
    PATCHELF=$APT/patchelf/usr/bin/patchelf
fi
LIBS=$ROOT/usr/lib/x86_64-linux-gnu
"$PATCHELF" --set-interpreter "$LIBS/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$LIBS" "$ROOT/$BINARY"
rm -rf "$APT"
version=$(installed_version)
echo "${version%%$'\n'*}"
