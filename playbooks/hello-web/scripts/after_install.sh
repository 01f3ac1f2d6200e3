#!/bin/sh
# AfterInstall: record which deployment installed the site.
set -eu
. "$(dirname "$0")/common.sh"
printf '%s\n' "$DEPLOYMENT_ID" > "$RUN_DIR/deployment"
printf '%s\n' "${BUNDLE_SHA256:-unknown}" > "$RUN_DIR/bundle"
echo "installed revision ${BUNDLE_SHA256:-unknown}"
