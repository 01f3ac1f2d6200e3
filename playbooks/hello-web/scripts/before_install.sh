#!/bin/sh
# BeforeInstall: prepare the run directory (not part of the installed files).
set -eu
. "$(dirname "$0")/common.sh"
mkdir -p "$RUN_DIR"
echo "BeforeInstall of $DEPLOYMENT_ID ($APPLICATION_NAME/$DEPLOYMENT_GROUP_NAME)"
