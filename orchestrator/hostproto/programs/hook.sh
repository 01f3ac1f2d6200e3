# hook MODE STATE_BASE ...: run one hook script so that it outlives the SSH connection.
#   hook start BASE TAIL ARGS... [NAME=VALUE...] start the supervisor (its text in
#                                               $ORCHESTRATOR_SUPERVISE) in its own session with
#                                               its ten ARGS, the NAME=VALUE pairs exported for
#                                               the hook, wait for it, print the result
#   hook collect BASE TAIL LIMIT                wait for a supervisor started earlier (after a
#                                               reconnect), at most LIMIT seconds, print the result
#   hook abort BASE GRACE                       terminate a running hook's process group: SIGTERM,
#                                               SIGKILL after GRACE seconds (stop --force); the
#                                               marker BASE.abort stops one not yet running
# GRACE and LIMIT are seconds in plain decimals (10, 0.5, 1000000: never an exponent).
# BASE.pid holds the supervisor's pid and its start (field 22 of /proc/PID/stat): a process that
# got that pid since is not the supervisor, so nothing waits on it.
# BASE.claim, a symbolic link made before the supervisor starts (one system call: two requests
# cannot both make it), names the `hook start` that starts this hook, by pid and start. A start
# sent again after a dropped connection, or a collect, that finds it waits for that one's
# supervisor instead of starting a second: the hook runs once, whichever request came first.
# The result: the frame "hook" ("status=<code> <ErrorCode>", "message=...", "warning=..."),
# then the frames "script-stdout" and "script-stderr": the last TAIL bytes of each (the whole
# output is in the deployment's logs/scripts.log).
set -u
mode=$1 base=$2
shift 2
case $mode in start | collect) tail=$1; shift ;; esac
# tenths SECONDS: $tenths, SECONDS in tenths of a second, rounded up (sh has integers only).
tenths() {
    case $1 in
    "" | *[!0-9.]* | *.*.*) tenths=100; return ;;  # not a plain decimal: the default, 10 s
    esac
    whole=${1%%.*} fraction=
    case $1 in *.*) fraction=${1#*.}000 ;; esac
    fraction=${fraction%"${fraction#???}"}
    # "1" before the digits: 050 is not octal
    tenths=$(( ${whole:-0} * 10 + (1${fraction:-000} - 1000 + 99) / 100 ))
}
# started_at PID: $started, when process PID started (field 22 of /proc/PID/stat; empty where
# there is no /proc: the pid alone then names the supervisor). The name (field 2) may hold spaces
# and parentheses: the fields counted start after its last ")".
started_at() {
    started=
    stat=
    { read -r stat < "/proc/$1/stat"; } 2> /dev/null || return 0
    set -- ${stat##*) }
    [ "$#" -ge 20 ] && started=${20}
}
# supervising PID START: process PID still runs and is the supervisor that started at START.
supervising() {
    kill -0 "$1" 2> /dev/null || return 1
    [ -z "${2:-}" ] && return 0
    started_at "$1"
    [ "$started" = "$2" ]
}
# read_line FILE: $line, FILE's first line once it is whole (its writer creates it, then writes
# it, a moment apart); empty when it is not whole after a second.
read_line() {
    line= i=0
    until { read -r line < "$1"; } 2> /dev/null || [ "$i" -ge 10 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}
# adopt: another `hook start` claimed this hook (BASE.claim): wait for its supervisor (BASE.pid),
# at most 30 s while that start still runs, then report the supervisor's result as collect does.
# A claimant gone without a supervisor never started the hook; it is not started here either.
adopt() {
    claimant=$(readlink "$base.claim")
    i=0
    # shellcheck disable=SC2086 # "PID START": two arguments
    while [ ! -f "$base.pid" ] && supervising $claimant && [ "$i" -lt 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ ! -f "$base.pid" ]; then
        frame hook
        echo "status=5 UnknownError"
        echo "message=the hook's start on the host (process ${claimant%% *}) ended or stalled before it started the hook"
        return 1
    fi
    read_line "$base.pid"
    # shellcheck disable=SC2086 # "PID START": two fields
    supervisor_is $line
}
# supervisor_is PID [START]: $supervisor and $start, as BASE.pid names them.
supervisor_is() {
    supervisor=${1:-} start=${2:-}
}
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
# uptime_tenths: $uptime, tenths of a second since boot (/proc/uptime: no fork); empty without it.
uptime_tenths() {
    uptime=
    { read -r up _ < /proc/uptime; } 2> /dev/null || return 0
    case $up in
    *.[0-9]*)
        digit=${up#*.}
        digit=${digit%"${digit#?}"}
        uptime=$((${up%.*} * 10 + digit))
        ;;
    esac
}
# until_done SUPERVISOR_PID START [LIMIT_TENTHS]: until the supervisor has written its result, or
# is gone without one, or LIMIT_TENTHS tenths of a second have passed (by the clock since boot;
# without one, by the 0.2 s steps taken, which a loaded host makes longer).
# `wait` alone is not enough: it also returns when the supervisor is stopped and continued (a
# frozen host thawed), and the result read then was half written.
until_done() {
    waited=0
    uptime_tenths
    began=$uptime
    while [ ! -f "$base.done" ] && supervising "$1" "$2"; do
        if [ -n "${3:-}" ]; then
            uptime_tenths
            [ -z "$uptime" ] || [ -z "$began" ] || waited=$((uptime - began))
            [ "$waited" -lt "$3" ] || return 1
        fi
        sleep 0.2
        waited=$((waited + 2))
    done
    return 0
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
    # This process's pid and start, from a builtin read of its own /proc entry ($$ is the
    # runner's); without /proc, the runner's pid.
    me=$$
    { read -r me _ < /proc/self/stat; } 2> /dev/null
    started_at "$me"
    if ! ln -s "$me $started" "$base.claim" 2> /dev/null; then
        adopt || exit 0
        until_done "$supervisor" "$start"
        report
        exit 0
    fi
    ORCHESTRATOR_UMASK=$session_umask setsid sh -c "$ORCHESTRATOR_SUPERVISE" hook-supervisor "$base" "$@" < /dev/null > /dev/null 2>&1 &
    supervisor=$!
    started_at "$supervisor"
    echo "$supervisor $started" > "$base.pid"
    wait "$supervisor"
    until_done "$supervisor" "$started"
    report ;;
abort)
    tenths "${1:-10}"
    # Before anything else: a supervisor that has not yet published its hook's pid reads this
    # after it does (supervise.sh), so one of the two always terminates the hook.
    [ -d "${base%/*}" ] || mkdir -p "${base%/*}"
    : > "$base.abort"
    if [ -f "$base.hookpid" ] && [ ! -f "$base.done" ]; then
        # The supervisor creates the file, then writes the pid (a moment apart): read it whole.
        group= i=0
        while [ -z "$group" ] && [ "$i" -lt 10 ]; do
            read -r group < "$base.hookpid" || [ -n "$group" ] || sleep 0.1
            i=$((i + 1))
        done
        [ -n "$group" ] || exit 0
        : > "$base.aborted"
        # The group's leader may not have made it yet (a moment after its fork): then its pid.
        kill -TERM "-$group" 2> /dev/null || kill -TERM "$group" 2> /dev/null
        i=0
        while kill -0 "-$group" 2> /dev/null || kill -0 "$group" 2> /dev/null; do
            if [ "$i" -ge "$tenths" ]; then
                kill -KILL "-$group" 2> /dev/null || kill -KILL "$group" 2> /dev/null
                break
            fi
            sleep 0.1
            i=$((i + 1))
        done
        echo "aborted"
    fi
    exit 0 ;;
collect)
    within=${1:-}
    if [ -L "$base.claim" ]; then
        adopt || exit 0
    elif [ ! -f "$base.pid" ]; then
        # Nothing claimed it: a `hook start` sent now starts it (one still in flight then finds
        # the claim and waits for that one's supervisor).
        frame hook
        echo "status=-1 NotStarted"
        exit 0
    else
        read_line "$base.pid"
        # shellcheck disable=SC2086 # "PID START": two fields
        supervisor_is $line
    fi
    limit=
    if [ -n "$within" ]; then tenths "$within"; limit=$tenths; fi
    if ! until_done "$supervisor" "${start:-}" "$limit"; then
        frame hook
        echo "status=5 UnknownError"
        echo "message=the hook supervisor (process $supervisor) gave no result within $within s"
        exit 0
    fi
    report ;;
esac
