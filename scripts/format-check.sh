#!/usr/bin/env bash
# Fails when a project C file is not formatted per .clang-format: tracked
# files and new ones not yet added (untracked, not ignored), so a file is
# checked before its first commit.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "format: $f is not clang-formatted (run clang-format -i $f)"
        bad=1
    fi
done < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null ||
    find src tests bench -name '*.[ch]')
[ $bad = 0 ] && echo "format: ok"
exit $bad
