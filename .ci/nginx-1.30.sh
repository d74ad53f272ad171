#!/usr/bin/env bash
# nginx of the LB image's release line (1.30, Debian sid) for `nginx -t` and the LB tests, in a
# folder of its own: the system's apt state and packages are left alone. Idempotent.
#
#   bash .ci/nginx-1.30.sh [DEST]        (default /opt/nginx-1.30; the binary is DEST/root/usr/sbin/nginx)
#
# sid's libssl and libcrypt need a newer glibc than Debian 12's, so sid's own glibc and loader
# come along and the binary is pointed at them (patchelf, unpacked, not installed).
set -euo pipefail
DEST=${1:-/opt/nginx-1.30}
ROOT=$DEST/root
if [ -x "$ROOT/usr/sbin/nginx" ] && "$ROOT/usr/sbin/nginx" -v 2>&1 | grep -q "nginx/1\.30\."; then
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
    apt-get -qq -o APT::Sandbox::User=root download nginx libssl3t64 libpcre2-8-0 libzstd1 zlib1g libcrypt1 libc6
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
"$PATCHELF" --set-interpreter "$LIBS/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$LIBS" "$ROOT/usr/sbin/nginx"
rm -rf "$APT"
"$ROOT/usr/sbin/nginx" -v
