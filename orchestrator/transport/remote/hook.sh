# hook MODE STATE_BASE ...: run one hook script so that it outlives the SSH connection.
#   hook start BASE SUPERVISOR_PROGRAM ARGS...  start the supervisor in its own session, wait for
#                                               it, print the result
#   hook collect BASE                           wait for a supervisor started earlier (after a
#                                               reconnect), print the result
#   hook abort BASE GRACE                       terminate a running hook's process group: SIGTERM,
#                                               SIGKILL after GRACE seconds (stop --force)
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
    mkdir -p "${base%/*}"
    rm -f "$base.status" "$base.out" "$base.err" "$base.timedout" "$base.pid" "$base.hookpid" "$base.aborted"
    setsid sh -c "$program" hook-supervisor "$base" "$@" < /dev/null > /dev/null 2>&1 &
    supervisor=$!
    echo "$supervisor" > "$base.pid"
    wait "$supervisor"
    report ;;
abort)
    grace=${1:-10}
    if [ -f "$base.hookpid" ] && [ ! -f "$base.status" ]; then
        group=$(cat "$base.hookpid")
        : > "$base.aborted"
        kill -TERM "-$group" 2> /dev/null
        i=0
        while kill -0 "-$group" 2> /dev/null && [ "$i" -lt $(( ${grace%.*} * 10 )) ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "-$group" 2> /dev/null
        echo "aborted"
    fi
    exit 0 ;;
collect)
    if [ ! -f "$base.pid" ]; then
        echo "status=-1 NotStarted"
        exit 0
    fi
    supervisor=$(cat "$base.pid")
    while [ ! -f "$base.status" ] && kill -0 "$supervisor" 2> /dev/null; do sleep 0.2; done
    report ;;
esac
