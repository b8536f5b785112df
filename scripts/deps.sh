#!/usr/bin/env bash
# Installs what the build and the tests need on Debian 12, and nothing twice:
# missing Debian packages via apt-get, then the pinned QuickJS sources from the
# npm package qjsc@0.3.0 (sha512 integrity checked) into third_party/quickjs,
# with our patches from patches/quickjs/ applied. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

QJS_PKG="qjsc@0.3.0"
QJS_INTEGRITY="sha512-a7+cU6/IVcZbIejffdt/wZVMX6LL2MDL3HQ9Zb5Gm23G9DvBMS/z9GHFxz39bAvp2PvMOM+ypSOAyokt2DdZ2w=="
QJS_DIR="third_party/quickjs"

# Libraries and servers: checked as Debian packages.
PACKAGES=(build-essential pkg-config libyaml-dev libyajl-dev libcmocka-dev libssl-dev
    librdkafka-dev libmicrohttpd-dev libjemalloc-dev libsystemd-dev libcrypt-dev
    mosquitto nats-server)
# Tools: checked as commands (they may come from elsewhere on the machine).
TOOLS=(cmake:cmake clang-format:clang-format python3:python3 npm:npm node:nodejs
    patch:patch curl:curl)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for t in "${TOOLS[@]}"; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "deps: need root to install packages: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

patches_sum=$( (cat patches/quickjs/*.patch 2>/dev/null || true) | sha256sum | cut -d" " -f1)
stamp="$QJS_DIR/.tagproc-stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$QJS_INTEGRITY $patches_sum" ]; then
    exit 0
fi

tgz_cache="third_party/qjsc-0.3.0.tgz"
mkdir -p third_party
if [ ! -f "$tgz_cache" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack "$QJS_PKG" --silent >/dev/null)
    mv "$tmp"/qjsc-0.3.0.tgz "$tgz_cache"
    rm -rf "$tmp"
fi
actual="sha512-$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz_cache")"
if [ "$actual" != "$QJS_INTEGRITY" ]; then
    echo "deps: integrity mismatch for $QJS_PKG: got $actual" >&2
    rm -f "$tgz_cache"
    exit 1
fi

rm -rf "$QJS_DIR" third_party/.qjs-unpack
mkdir -p third_party/.qjs-unpack
tar -xzf "$tgz_cache" -C third_party/.qjs-unpack package/deps/quickjs_2021_03_27
mv third_party/.qjs-unpack/package/deps/quickjs_2021_03_27 "$QJS_DIR"
rm -rf third_party/.qjs-unpack
for p in patches/quickjs/*.patch; do
    [ -f "$p" ] || continue
    echo "deps: applying $p"
    patch -d "$QJS_DIR" -p1 --quiet --forward <"$p"
done
echo "$QJS_INTEGRITY $patches_sum" >"$stamp"
echo "deps: QuickJS ready in $QJS_DIR"
