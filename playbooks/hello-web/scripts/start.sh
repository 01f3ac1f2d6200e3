#!/bin/sh
# ApplicationStart: start the server fully detached: its own session, no inherited
# streams, so the hook returns at once and the server outlives the SSH connection.
set -eu
. "$(dirname "$0")/common.sh"
mkdir -p "$RUN_DIR"
setsid python3 -m http.server --bind "$ADDRESS" --directory /srv/hello-web/www "$PORT" \
    > "$RUN_DIR/server.log" 2>&1 < /dev/null &
echo $! > "$RUN_DIR/pid"
echo "$ADDRESS:$PORT" > "$RUN_DIR/address"
echo "started hello-web on $ADDRESS:$PORT (pid $!)"
