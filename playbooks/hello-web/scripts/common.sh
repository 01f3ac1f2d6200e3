# Shared settings for hello-web's hooks (sourced, not run).
RUN_DIR=/srv/hello-web/run
PORT=${HELLO_WEB_PORT:-8080}
# The address to serve on: this host's own SSH address, so that every lab host
# (each on its own loopback address) can serve on the same port.
if [ -n "${HELLO_WEB_ADDRESS:-}" ]; then
    ADDRESS=$HELLO_WEB_ADDRESS
elif [ -n "${SSH_CONNECTION:-}" ]; then
    # shellcheck disable=SC2086
    set -- $SSH_CONNECTION
    ADDRESS=$3
else
    ADDRESS=127.0.0.1
fi
