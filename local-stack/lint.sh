#!/usr/bin/env bash
# The house habits, as a gate: formatting, lints and script checks. The test
# command runs it first, so a finding costs seconds rather than a whole run.
#
#   cargo fmt --all -- --check                          (fix: cargo fmt --all)
#   cargo clippy --workspace --all-targets -D warnings  (fix: cargo clippy --fix --allow-dirty, then by hand)
#   every shell script through shellcheck               (fix: by hand; see the wiki link it prints)
#   ruff check on every Python file                     (fix: .venv-lint/bin/ruff check --fix)
#   the manual's relative links and anchors             (fix: the page or heading it names)
#   cargo doc of the shop crate, warnings as errors     (fix: the doc comment it names)
#
# Installs what is missing: rustfmt and clippy (rustup), shellcheck
# (Debian), ruff (PyPI, pinned, in .venv-lint).
# Usage: local-stack/lint.sh
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

# Pinned: a new ruff release may add rules to its defaults.
RUFF_VERSION=0.17.6
LINT_VENV="$REPO_DIR/.venv-lint"

ensure_lint_tools() {
    for component in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
            log "installing $component (rustup)"
            rustup component add "$component"
        fi
    done
    command -v shellcheck >/dev/null 2>&1 || apt_install shellcheck
    if [ "$("$LINT_VENV/bin/ruff" --version 2>/dev/null)" != "ruff $RUFF_VERSION" ]; then
        python3 -m venv "$LINT_VENV"
        "$LINT_VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "ruff==$RUFF_VERSION"
    fi
}

ensure_lint_tools
# Every tracked script, whatever its name: files ending in .sh, and files
# whose first line names a shell.
mapfile -t shell_scripts < <(git ls-files | while read -r file; do
    case "$file" in
        *.sh) echo "$file" ;;
        *) [ -f "$file" ] && head -n1 "$file" | grep -qE '^#!.*\b(ba)?sh\b' && echo "$file" ;;
    esac
done)
mapfile -t python_files < <(git ls-files '*.py')

log "lint 1/6 cargo fmt --check"
cargo fmt --all -- --check
log "lint 2/6 cargo clippy -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings
log "lint 3/6 shellcheck (${#shell_scripts[@]} scripts)"
shellcheck "${shell_scripts[@]}"
log "lint 4/6 ruff check (${#python_files[@]} files)"
"$LINT_VENV/bin/ruff" check --quiet "${python_files[@]}"
log "lint 5/6 links and anchors of README.md and docs/"
python3 local-stack/checks/doc_links.py "$REPO_DIR"
log "lint 6/6 cargo doc -p shop, warnings as errors"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet -p shop --no-deps
log "lint: clean"
