#!/usr/bin/env bash
# The Debian package and `make install`, on this machine as a user would:
# `make install PREFIX DESTDIR` lays out binary, man page, examples and docs;
# `make deb` builds build/tagproc_*.deb, `dpkg -i` installs it; dpkg -L,
# the conffile, the declared dependencies, the installed binary on the
# installed examples, `systemd-analyze verify` of both units, `man -w`, bash
# completion; then `dpkg -r` and `dpkg -P` leave nothing behind. Needs root
# (CI is root). Registered for the release build only (packaging twice
# would test the same thing); the package is removed even when a check fails.
set -u
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
MANDB_FLAG=/var/lib/man-db/auto-update
cleanup() {
    dpkg -P tagproc >/dev/null 2>&1
    [ -e "$T/auto-update" ] && mv "$T/auto-update" "$MANDB_FLAG"
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP # (a timeout's SIGTERM too: remove the package, restore man-db)
. tests/lib.sh

if [ "$(id -u)" != 0 ]; then
    echo "FAIL needs root: dpkg -i installs the package into this machine"
    exit 1
fi
# One package test per machine at a time (several clones may run make test).
exec 9>/run/lock/tagproc-package-test.lock
flock 9
if dpkg-query -W -f='${Status}' tagproc 2>/dev/null | grep -q "install ok installed"; then
    echo "FAIL a tagproc package is already installed; remove it first (dpkg -P tagproc)"
    exit 1
fi
missing=()
command -v man >/dev/null || missing+=(man-db)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Images that drop man pages from packages (path-exclude) would hide ours.
DPKG_OPTS=(--path-include='/usr/share/man/man1/tagproc.1*')
# man-db's dpkg trigger rebuilds the whole man index on every install and
# removal (a minute each on a loaded machine); `man -w` does not need the
# index, so the rebuild is off while this test runs (restored on exit).
[ -e "$MANDB_FLAG" ] && mv "$MANDB_FLAG" "$T/auto-update"

# 1. make install with PREFIX and DESTDIR
R="$T/root"
make install PREFIX=/opt/tp DESTDIR="$R" >"$T/install.log" 2>&1
check_sh "make install PREFIX=/opt/tp DESTDIR=...: succeeds" "[ $? = 0 ] || tail -20 '$T/install.log'"
for f in bin/tagproc share/man/man1/tagproc.1 share/tagproc/examples/opcua-simulator.yaml \
    share/tagproc/examples/opcua-simulator.test.yaml share/doc/tagproc/README.md \
    share/doc/tagproc/CONFIG.md share/bash-completion/completions/tagproc \
    lib/systemd/system/tagproc.service lib/systemd/system/tagproc@.service; do
    check_sh "make install: /opt/tp/$f" "[ -s '$R/opt/tp/$f' ]"
done
check_sh "make install: unit runs the installed binary" \
    "grep -qx 'ExecStart=/opt/tp/bin/tagproc -c /etc/opt/tp/tagproc/tagproc.yaml' '$R/opt/tp/lib/systemd/system/tagproc.service'"
check_sh "make install: installed binary runs an installed example" \
    "'$R/opt/tp/bin/tagproc' -c '$R/opt/tp/share/tagproc/examples/opcua-simulator.yaml' | grep -c '\"topic\":\"umh.v1.' | grep -qx 420"

# 2. The issue's done-when line, literally
check_sh "make deb && dpkg -i build/*.deb && systemd-analyze verify ... && tagproc --version && man -w tagproc && dpkg -r tagproc" \
    "make deb >'$T/deb.log' 2>&1 && dpkg -i ${DPKG_OPTS[*]} build/*.deb >'$T/dpkg.log' && systemd-analyze verify /lib/systemd/system/tagproc.service && tagproc --version && man -w tagproc && dpkg -r tagproc >/dev/null"

# 3. The package in detail
deb=$(ls build/tagproc_*.deb | head -1)
check_sh "dpkg -i $deb" "dpkg -i ${DPKG_OPTS[*]} '$deb' >'$T/dpkg.log' 2>&1"
dpkg -L tagproc >"$T/files" 2>&1
for f in /usr/bin/tagproc /etc/tagproc/tagproc.yaml /lib/systemd/system/tagproc.service \
    /lib/systemd/system/tagproc@.service /usr/share/man/man1/tagproc.1 \
    /usr/share/bash-completion/completions/tagproc /usr/share/tagproc/examples/opcua-simulator.yaml \
    /usr/share/doc/tagproc/README.md; do
    check_sh "dpkg -L lists $f (and it is there)" "grep -qx '$f' '$T/files' && [ -e '$f' ]"
done
check_sh "/etc/tagproc/tagproc.yaml is a conffile, the simulator example" \
    "dpkg-query -W -f='\${Conffiles}' tagproc | grep -q '/etc/tagproc/tagproc.yaml' && cmp /etc/tagproc/tagproc.yaml examples/opcua-simulator.yaml"
check_sh "dependencies declared (the Debian libraries it links)" \
    "dpkg-query -W -f='\${Depends}' tagproc | tee /dev/stderr | grep -q libyaml-0-2 && dpkg-query -W -f='\${Depends}' tagproc | grep -q libsystemd0 && dpkg-query -W -f='\${Depends}' tagproc | grep -q librdkafka1"
check_sh "installed binary: every library resolved" "! ldd /usr/bin/tagproc | grep -q 'not found'"
check_sh "installed binary runs the installed config (/etc/tagproc/tagproc.yaml)" \
    "tagproc -c /etc/tagproc/tagproc.yaml | grep -c '\"topic\":\"umh.v1.' | grep -qx 420"
check_sh "installed binary runs the installed rule tests" \
    "cd /usr/share/tagproc/examples && tagproc test opcua-simulator.test.yaml stdin-tag-processor.test.yaml"
check_sh "installed binary lints every installed example" "tagproc lint /usr/share/tagproc/examples/*.yaml"
check_sh "systemd-analyze verify tagproc.service and tagproc@demo.service: no findings" \
    "systemd-analyze verify /lib/systemd/system/tagproc.service tagproc@demo.service >'$T/verify' 2>&1; rc=\$?; cat '$T/verify'; [ \$rc = 0 ] && [ ! -s '$T/verify' ]"
for line in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure DynamicUser=yes \
    ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes PrivateTmp=yes \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' SystemCallFilter=@system-service \
    StateDirectory=tagproc WatchdogSec=30s; do
    check_sh "tagproc.service: $line" "grep -qxF '$line' /lib/systemd/system/tagproc.service"
done
check_sh "tagproc@.service: runs /etc/tagproc/%i.yaml with its own state directory" \
    "grep -qxF 'ExecStart=/usr/bin/tagproc -c /etc/tagproc/%i.yaml' /lib/systemd/system/tagproc@.service && grep -qxF 'StateDirectory=tagproc/%i' /lib/systemd/system/tagproc@.service"
check_sh "man -w tagproc" "man -w tagproc | grep -q '^/usr/share/man/man1/tagproc.1'"
check_sh "man tagproc documents --set" "MANWIDTH=120 man tagproc 2>/dev/null | grep -q -- '--set KEY.PATH=VALUE'"
check_sh "bash completion installed and completing" \
    "bash -c '. /usr/share/bash-completion/completions/tagproc; COMP_WORDS=(tagproc te); COMP_CWORD=1; _tagproc; printf \"%s\n\" \"\${COMPREPLY[@]}\"' | grep -qx test"

# 4. Removal: -r keeps only the conffile, purge leaves nothing
cut -d' ' -f1 "$T/files" | while read -r f; do [ -f "$f" ] && echo "$f"; done >"$T/installed"
check_sh "dpkg -r tagproc" "dpkg -r tagproc >/dev/null"
check_sh "after dpkg -r: only the conffile is left" \
    "left=\$(while read -r f; do [ -e \"\$f\" ] && echo \"\$f\"; done <'$T/installed'); echo \"\$left\"; [ \"\$left\" = /etc/tagproc/tagproc.yaml ]"
check_sh "dpkg -P tagproc" "dpkg -P tagproc >/dev/null"
check_sh "after purge: nothing left (files, /etc/tagproc, state, dpkg record)" \
    "left=\$(while read -r f; do [ -e \"\$f\" ] && echo \"\$f\"; done <'$T/installed'); echo \"\$left\"; [ -z \"\$left\" ] && [ ! -e /etc/tagproc ] && [ ! -e /var/lib/tagproc ] && ! dpkg-query -W tagproc 2>/dev/null | grep -q ."
finish
