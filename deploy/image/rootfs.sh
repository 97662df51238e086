#!/bin/sh
# Lays out the root filesystem of the Pharos image in OUT_DIR from a built `pharos` binary:
#
#   usr/local/bin/pharos          the binary, stripped
#   lib*/...                      the shared libraries it links (from ldd) and the dynamic loader
#   etc/passwd, etc/group         root and nonroot (65532:65532), the user the image runs as
#   etc/ssl/certs/...             the CA bundle, when the machine has one (TLS to webhooks, OTLP)
#   var/lib/pharos/, tmp/         the data directory (chowned by the Dockerfile) and /tmp (1777)
#
# Used by the Dockerfile's `build` stage and by `cargo xtask image` (which lays it out on the
# host into the context of the `runtime-prebuilt` target), so both images hold the same files.
#
#   sh deploy/image/rootfs.sh BINARY OUT_DIR
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 BINARY OUT_DIR" >&2
    exit 2
fi
binary=$1
out=$2

if [ ! -x "$binary" ]; then
    echo "rootfs.sh: $binary is not an executable file" >&2
    exit 1
fi

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc" "$out/var/lib/pharos" "$out/tmp"
chmod 1777 "$out/tmp"

# Debug info and symbols are most of a release binary (debug = "line-tables-only").
if command -v strip >/dev/null 2>&1; then
    strip --strip-all -o "$out/usr/local/bin/pharos" "$binary"
else
    echo "rootfs.sh: no strip on this machine; the binary goes in unstripped" >&2
    cp "$binary" "$out/usr/local/bin/pharos"
fi
chmod 0755 "$out/usr/local/bin/pharos"

# Every library ldd resolves ("name => /path (addr)") and the loader ("/lib64/ld-linux... (addr)"),
# copied (links followed) to the same path in the image. A static binary lists none.
libraries=$(ldd "$binary" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true)
for library in $libraries; do
    mkdir -p "$out$(dirname "$library")"
    cp -L "$library" "$out$library"
done

cat >"$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/var/lib/pharos:/sbin/nologin
EOF
cat >"$out/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"

if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$out/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
fi

echo "rootfs.sh: $out holds $(find "$out" -type f | wc -l) files:" >&2
find "$out" -type f -o -type l | sed "s|^$out||" | sort >&2
