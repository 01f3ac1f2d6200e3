# hook MODE STATE_BASE ...: run one hook script so that it outlives the SSH connection.
#   hook start BASE SUPERVISOR_PROGRAM ARGS...  start the supervisor in its own session, wait for
#                                               it, print the result
#   hook collect BASE                           wait for a supervisor started earlier (after a
#                                               reconnect), print the result
# The result: "status=<code> <ErrorCode>" and "warning=...", then the script's stdout and stderr
# after "---stdout---" and "---stderr---".
set -u
mode=$1 base=$2
shift 2
report() {
    if [ -f "$base.status" ]; then cat "$base.status"; else echo "status=5 UnknownError"; echo "message=the hook supervisor ended without a result"; fi
    echo '---stdout---'
    [ -f "$base.out" ] && cat "$base.out"
    echo '---stderr---'
    [ -f "$base.err" ] && cat "$base.err"
    return 0
}
case $mode in
start)
    program=$1
    shift
    mkdir -p "$(dirname "$base")"
    rm -f "$base.status" "$base.out" "$base.err" "$base.timedout" "$base.pid"
    setsid sh -c "$program" hook-supervisor "$base" "$@" < /dev/null > /dev/null 2>&1 &
    supervisor=$!
    echo "$supervisor" > "$base.pid"
    wait "$supervisor"
    report ;;
collect)
    if [ -f "$base.pid" ]; then
        supervisor=$(cat "$base.pid")
        while [ ! -f "$base.status" ] && kill -0 "$supervisor" 2> /dev/null; do sleep 0.2; done
    fi
    report ;;
esac
