# hook MODE STATE_BASE ...: run one hook script so that it outlives the SSH connection.
#   hook start BASE TAIL ARGS... [NAME=VALUE...] start the supervisor (its text in
#                                               $ORCHESTRATOR_SUPERVISE) in its own session with
#                                               its ten ARGS, the NAME=VALUE pairs exported for
#                                               the hook, wait for it, print the result
#   hook collect BASE TAIL                      wait for a supervisor started earlier (after a
#                                               reconnect), print the result
#   hook abort BASE GRACE                       terminate a running hook's process group: SIGTERM,
#                                               SIGKILL after GRACE seconds (stop --force)
# The result: the frame "hook" ("status=<code> <ErrorCode>", "message=...", "warning=..."),
# then the frames "script-stdout" and "script-stderr": the last TAIL bytes of each (the whole
# output is in the deployment's logs/scripts.log).
set -u
mode=$1 base=$2
shift 2
case $mode in start | collect) tail=$1; shift ;; esac
report() {
    # Builtins where they do: on a fleet every fork here is paid once per host and hook.
    frame hook
    if [ -f "$base.status" ]; then
        while IFS= read -r line; do printf '%s\n' "$line"; done < "$base.status"
    else
        echo "status=5 UnknownError"; echo "message=the hook supervisor ended without a result"
    fi
    frame script-stdout
    if [ -s "$base.out" ]; then tail -c "$tail" "$base.out"; fi
    frame script-stderr
    if [ -s "$base.err" ]; then tail -c "$tail" "$base.err"; fi
    return 0
}
# until_done SUPERVISOR_PID: until the supervisor has written its result, or is gone without one.
# `wait` alone is not enough: it also returns when the supervisor is stopped and continued (a
# frozen host thawed), and the result read then was half written.
until_done() {
    while [ ! -f "$base.done" ] && kill -0 "$1" 2> /dev/null; do sleep 0.2; done
}
case $mode in
start)
    i=0
    for assignment; do
        i=$((i + 1))
        [ "$i" -le 10 ] || export "$assignment"
    done
    # The supervisor's logs directory too ($1/$2/$3: ROOT/GROUP_ID/DEPLOYMENT_ID): one mkdir
    # for a deployment's first hook, none for the others.
    logs="$1/$2/$3/logs"
    [ -d "${base%/*}" ] && [ -d "$logs" ] || mkdir -p "${base%/*}" "$logs"
    if [ -e "$base.pid" ]; then
        rm -f "$base.status" "$base.done" "$base.out" "$base.err" "$base.timedout" "$base.pid" "$base.hookpid" "$base.aborted"
    fi
    ORCHESTRATOR_UMASK=$session_umask setsid sh -c "$ORCHESTRATOR_SUPERVISE" hook-supervisor "$base" "$@" < /dev/null > /dev/null 2>&1 &
    supervisor=$!
    echo "$supervisor" > "$base.pid"
    wait "$supervisor"
    until_done "$supervisor"
    report ;;
abort)
    grace=${1:-10}
    if [ -f "$base.hookpid" ] && [ ! -f "$base.done" ]; then
        read -r group < "$base.hookpid"
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
        frame hook
        echo "status=-1 NotStarted"
        exit 0
    fi
    read -r supervisor < "$base.pid"
    until_done "$supervisor"
    report ;;
esac
