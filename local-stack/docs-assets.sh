#!/usr/bin/env bash
# Refreshes the vendored Swagger UI (shared/assets/swagger-ui/) from the npm
# package swagger-ui-dist at the pinned version: the two files /docs
# inlines, and the package's licence files. Run it by hand to upgrade (the
# build and the tests never download anything); commit what changes.
#
#   local-stack/docs-assets.sh [version, default the pinned one]
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

VERSION="${1:-5.35.0}"
TARGET="$REPO_DIR/shared/assets/swagger-ui"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

command -v npm >/dev/null 2>&1 || apt_install nodejs npm
(cd "$WORK" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE; do
    cp "$WORK/package/$file" "$TARGET/$file"
done
log "swagger-ui-dist $VERSION copied to $TARGET; update the version in the README's Layout table"
