#!/bin/sh
# ApplicationStop: stop the server started by the previous revision, if it runs.
set -eu
. "$(dirname "$0")/common.sh"
if [ -f "$RUN_DIR/pid" ]; then
    pid=$(cat "$RUN_DIR/pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        echo "stopped hello-web (pid $pid)"
    fi
    rm -f "$RUN_DIR/pid"
fi
echo "$DEPLOYMENT_ID" > "$RUN_DIR/stopped-by"
