#!/usr/bin/env bash
# Files generated from the tables in the code and checked in: docs/CONFIG.md
# (`tagproc config-doc`), the man page docs/tagproc.1 (`tagproc man`) and the
# bash completion (`tagproc completion bash`). Fails when one is stale, i.e.
# someone changed an option or a command and forgot to regenerate it. Also
# checks that the man page renders and the completion script completes.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

stale() { # file, generator command
    if "$BIN" $2 >"$T/gen" && diff -u "$1" "$T/gen"; then
        return 0
    fi
    echo "$1 is stale: run  build/tagproc $2 > $1"
    return 1
}
check "docs/CONFIG.md is current" stale docs/CONFIG.md config-doc
check "docs/tagproc.1 is current" stale docs/tagproc.1 man
check "packaging/tagproc.bash-completion is current" stale packaging/tagproc.bash-completion \
    "completion bash"

# The man page documents every command and option of the --help texts.
command -v man >/dev/null || apt-get install -y -qq --no-install-recommends man-db >/dev/null
MANWIDTH=200 man -l docs/tagproc.1 >"$T/man.txt" 2>"$T/man.err"
check_sh "man page renders without warnings" "[ -s '$T/man.txt' ] && [ ! -s '$T/man.err' ]"
for cmd in run lint test bench help; do
    check_sh "man page has every option of tagproc $cmd --help" \
        "'$BIN' $cmd --help | grep -oE '^  (-[a-zA-Z], )?--?[a-z-]+' | sed 's/^ *//' |
         while read -r opt; do grep -qF -- \"\$opt\" '$T/man.txt' || { echo \"missing \$opt\"; exit 1; }; done"
done
check_sh "man page has the config keys" "grep -q 'batch_size' '$T/man.txt' && grep -q 'processors\[\].tag_processor' '$T/man.txt'"

# The completion script completes commands, options and help topics.
complete_words() { # words of the command line (the last is being completed)
    bash -c '. packaging/tagproc.bash-completion; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _tagproc; printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
check_sh "completion: commands" "complete_words tagproc li | grep -qx lint"
check_sh "completion: run options" "complete_words tagproc --se | grep -qx -- --set"
check_sh "completion: lint options" "complete_words tagproc lint --st | grep -qx -- --strict"
check_sh "completion: help topics" "complete_words tagproc help be | grep -qx bench"
finish
