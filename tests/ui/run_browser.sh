#!/usr/bin/env bash
# The Topic Browser in a real browser: headless Chromium (Debian package,
# installed when missing) driven by puppeteer-core (pinned npm package,
# installed into a cache folder) against tagproc fed by the simulator: the
# tree shows the topics, a tag shows its value and a sparkline, search
# narrows the tree, the Drops panel lists a forced js_error. Screenshots go to
# BUILD_DIR/test-artefacts/ui/. DOCS_SCREENSHOT=path also writes the docs image.
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=$(realpath "${2:-build}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit
PUPPETEER_VERSION=23.11.1
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tagproc/puppeteer-core-$PUPPETEER_VERSION
ART=$BUILD/test-artefacts/ui
mkdir -p "$ART" "$CACHE"

if ! command -v chromium >/dev/null; then
    echo "installing Debian chromium"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
check "chromium is installed" command -v chromium
(
    flock 9
    if [ ! -f "$CACHE/node_modules/puppeteer-core/package.json" ]; then
        echo "installing puppeteer-core@$PUPPETEER_VERSION into $CACHE"
        cd "$CACHE" && npm install --no-save --no-audit --no-fund --loglevel=error \
            "puppeteer-core@$PUPPETEER_VERSION" >/dev/null
    fi
) 9>"$CACHE.lock"
check "puppeteer-core $PUPPETEER_VERSION is installed" \
    grep -q "\"version\": \"$PUPPETEER_VERSION\"" "$CACHE/node_modules/puppeteer-core/package.json"

start_bg "$BIN" -c tests/ui/ui.yaml 2>"$T/err"
PID=$BG_PID
PORT=$(http_port "$T/err")
# a few seconds of history and some drops before the browser looks
wait_until "curl -s http://127.0.0.1:$PORT/api/drops | grep -q forced" 30

NODE_PATH=$CACHE/node_modules node tests/ui/browser.js "http://127.0.0.1:$PORT/" "$ART" \
    ${DOCS_SCREENSHOT:+"$(realpath -m "$DOCS_SCREENSHOT")"} >"$T/browser.out" 2>&1
rc=$?
while read -r line; do
    case $line in
    ok\ *) ok "${line#ok }" ;;
    FAIL\ *) bad "${line#FAIL }" ;;
    *) echo "    $line" ;;
    esac
done <"$T/browser.out"
check_sh "browser run exit 0" "[ $rc = 0 ]"
check_sh "screenshots saved" "for f in tree topic search drops; do [ -s '$ART/'\$f.png ] || exit 1; done"
stop_bg "$PID"
rc=$?
check_sh "tagproc exit 0" "[ $rc = 0 ]"
finish
