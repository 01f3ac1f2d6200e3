# supervise BASE ROOT GROUP_ID DEPLOYMENT_ID EVENT SCRIPT LOCATION TIMEOUT RUNAS ARCHIVE GRACE
# Runs detached from the SSH session: one hook script in its own process group, stdin from
# /dev/null, output to files (a child that keeps them open cannot hang the hook), a timeout with
# SIGTERM to the group and SIGKILL after GRACE seconds; writes BASE.status, then BASE.done.
set -u
base=$1 root=$2 gid=$3 did=$4 event=$5 script=$6 location=$7 timeout=$8 runas=$9
shift 9
archive=$1 grace=$2
# The hook sees the agent's environment, not the runner's own variables. Its umask is the
# session's: this supervisor's files are private (umask.sh), what the hook makes is its own affair.
clock=${ORCHESTRATOR_CLOCK:-} gnu_timeout=${ORCHESTRATOR_GNU_TIMEOUT:-}
hook_umask=${ORCHESTRATOR_UMASK:-022}
unset ORCHESTRATOR_CLOCK ORCHESTRATOR_SUPERVISE ORCHESTRATOR_GNU_TIMEOUT ORCHESTRATOR_UMASK
dir="$root/$gid/$did"
# hook start made $dir/logs before it started this supervisor.
[ -d "$root/ongoing-deployment" ] || mkdir -p "$root/ongoing-deployment"
printf '%s\n%s\n' "$event" "$dir" > "$root/ongoing-deployment/$did"
finish() {
    # finish CODE ERROR_CODE MESSAGE [WARNING]: BASE.done says BASE.status is complete.
    { printf 'status=%s %s\n' "$1" "$2"; printf 'message=%s\n' "$3"; printf 'warning=%s\n' "${4:-}"; } > "$base.status"
    log_output
    : > "$base.done"
    exit 0
}
# utc_now: $now, the host's time as 2026-11-26T15:04:05Z, without a fork of `date` per hook: the
# runner read the clock once ($clock: epoch minus uptime, in centiseconds), and the uptime is a
# read of /proc. Days to a civil date: Howard Hinnant's civil_from_days.
utc_now() {
    if [ -z "$clock" ] || ! read -r up _ 2> /dev/null < /proc/uptime; then
        now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
        return
    fi
    # "1234.05" -> 123405 (the 1 keeps a fraction such as 05 from reading as octal)
    utc_iso $(( (clock + ${up%.*} * 100 + 1${up#*.} - 100) / 100 ))
}
# utc_iso SECONDS: $now, that many seconds after 1970-01-01T00:00:00Z.
utc_iso() {
    z=$(($1 / 86400 + 719468)) s=$(($1 % 86400))
    era=$((z / 146097))
    doe=$((z - era * 146097))
    yoe=$(((doe - doe / 1460 + doe / 36524 - doe / 146096) / 365))
    doy=$((doe - (365 * yoe + yoe / 4 - yoe / 100)))
    mp=$(((5 * doy + 2) / 153))
    d=$((doy - (153 * mp + 2) / 5 + 1))
    m=$((mp < 10 ? mp + 3 : mp - 9))
    y=$((yoe + era * 400 + (m <= 2)))
    hh=$((s / 3600)) mm=$((s % 3600 / 60)) ss=$((s % 60))
    [ "$m" -ge 10 ] || m=0$m
    [ "$d" -ge 10 ] || d=0$d
    [ "$hh" -ge 10 ] || hh=0$hh
    [ "$mm" -ge 10 ] || mm=0$mm
    [ "$ss" -ge 10 ] || ss=0$ss
    now="$y-$m-${d}T$hh:$mm:${ss}Z"
}
log_output() {
    utc_now
    {
        printf '%s LifecycleEvent - %s\n' "$now" "$event"
        printf '%s Script - %s\n' "$now" "$location"
        for stream in stdout stderr; do
            file="$base.out"
            [ "$stream" = stderr ] && file="$base.err"
            [ -f "$file" ] || continue
            # Builtins for the usual few lines (no fork); past 1000, one awk for the rest: the
            # `read` builtin takes a system call per byte (5 MiB took dash 3.3 s, busybox 7.6 s).
            n=0
            while [ "$n" -lt 1000 ] && { IFS= read -r line || [ -n "$line" ]; }; do
                printf '%s [%s]%s\n' "$now" "$stream" "$line"
                n=$((n + 1))
            done < "$file"
            [ "$n" -lt 1000 ] || awk -v skip="$n" -v prefix="$now [$stream]" 'NR > skip { print prefix $0 }' "$file"
        done
    } >> "$dir/logs/scripts.log"
}
: > "$base.out"
: > "$base.err"
if [ ! -f "$script" ]; then
    finish 1 ScriptMissing "Script does not exist at specified location: $location"
fi
if [ ! -x "$script" ] && ! chmod +x "$script" 2>> "$base.err"; then
    finish 2 ScriptNotExecutable "Script at specified location: $location is not executable and chmod +x failed"
fi
export LIFECYCLE_EVENT="$event" DEPLOYMENT_ID="$did" DEPLOYMENT_GROUP_ID="$gid"
cd "$archive" 2>> "$base.err" || finish 5 UnknownError "cannot enter $archive"
# let_in USER: the way to the archive for a runas user through the deployment's private
# directories: an ACL entry for that user alone (search on the way, read on the archive itself).
# A host without setfacl opens the same way to every user, and says so.
access=
let_in() {
    if command -v setfacl > /dev/null \
        && setfacl -m "u:$1:x" "$root" "$root/$gid" "${archive%/*}" 2> /dev/null \
        && setfacl -m "u:$1:rx" "$archive" 2> /dev/null; then
        return 0
    fi
    chmod o+x "$root" "$root/$gid" "${archive%/*}" 2>> "$base.err" && chmod o+rx "$archive" 2>> "$base.err"
    access="the host has no setfacl: the way to $archive was opened to every user for runas user $1 (install the acl package to keep it private)"
}
# With `become: sudo` this program already runs as root, so `su` reaches any runas user.
if [ -z "$runas" ] || [ "$runas" = "$(id -un)" ]; then
    set -- "$script"
elif [ "$(id -u)" = 0 ]; then
    let_in "$runas"
    set -- su -s /bin/sh "$runas" -c "\"\$0\"" "$script"
else
    finish 4 ScriptFailed "Script at specified location: $location cannot run as user $runas: connected as $(id -un) without root (become: none)"
fi
# seconds_now: $seconds, seconds since boot from /proc (no fork); `date` where there is no /proc.
seconds_now() {
    if read -r up _ < /proc/uptime 2> /dev/null; then seconds=${up%.*}; else seconds=$(date +%s); fi
}
as=""
[ -n "$runas" ] && as=" run as user $runas"
# stop --force came before this hook started (hook abort's BASE.abort): it does not start.
if [ -f "$base.abort" ]; then
    finish 1 ScriptFailed "Script at specified location: $location$as was not run: the deployment was stopped with --force"
fi
seconds_now
started=$seconds
# coreutils' timeout leads its own process group (the hook's), sends it SIGTERM at the deadline
# and SIGKILL GRACE seconds later, and exits 124 when the deadline passed. busybox's signals the
# hook's own process only: there (the runner found no coreutils timeout) the hook leads a session
# of its own and a watcher does the same, with a process more and a `sleep 1` a second.
watcher=
if [ -n "$gnu_timeout" ]; then
    { umask "$hook_umask"; exec timeout -k "$grace" "$timeout" "$@"; } < /dev/null > "$base.out" 2> "$base.err" &
    pid=$!
else
    # Not a group leader (the supervisor is): setsid makes the session in this process.
    { umask "$hook_umask"; exec setsid "$@"; } < /dev/null > "$base.out" 2> "$base.err" &
    pid=$!
    # A second at a time, so that when the hook ends first and the watcher is killed, at most a
    # `sleep 1` outlives it (a signal trap around one long sleep leaves it behind in a race).
    (
        waited=0
        while [ "$waited" -lt "$timeout" ]; do sleep 1; waited=$((waited + 1)); done
        : > "$base.timedout"
        kill -TERM "-$pid"
        sleep "$grace"
        kill -KILL "-$pid"
    ) < /dev/null > /dev/null 2>&1 &
    watcher=$!
fi
echo "$pid" > "$base.hookpid"
# hook abort writes BASE.abort, then reads BASE.hookpid; this wrote BASE.hookpid, now reads
# BASE.abort: whatever order they ran in, one of the two sees the other and ends the hook.
# The group's leader may not have made it yet (a moment after the fork): then its pid.
killer=
if [ -f "$base.abort" ]; then
    : > "$base.aborted"
    (
        kill -TERM "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null
        sleep "$grace"
        kill -KILL "-$pid" 2> /dev/null || kill -KILL "$pid" 2> /dev/null
    ) < /dev/null > /dev/null 2>&1 &
    killer=$!
fi
wait "$pid"
code=$?
[ -z "$watcher" ] || kill "$watcher" 2> /dev/null
[ -z "$killer" ] || kill "$killer" 2> /dev/null
# 124: the deadline passed; 137: it also needed the SIGKILL (or something else killed it).
seconds_now
if [ "$code" -eq 124 ] || { [ "$code" -eq 137 ] && [ $((seconds - started)) -ge "$timeout" ]; }; then
    : > "$base.timedout"
fi
warning=$access
# A child that detaches (setsid, a daemon) leaves the group within moments: give it a second.
i=0
while kill -0 "-$pid" 2> /dev/null && [ "$i" -lt 10 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "-$pid" 2> /dev/null; then
    warning="${warning:+$warning; }the script exited but a process it started still runs (process group $pid); its output was not waited for"
fi
if [ -f "$base.aborted" ]; then
    finish "$code" ScriptFailed "Script at specified location: $location$as was terminated: the deployment was stopped with --force" "$warning"
elif [ -f "$base.timedout" ]; then
    finish "$code" ScriptTimedOut "Script at specified location: $location$as failed to complete in $timeout seconds" "$warning"
elif [ "$code" -ne 0 ]; then
    finish "$code" ScriptFailed "Script at specified location: $location$as failed with exit code $code" "$warning"
fi
finish 0 Success "Script at specified location: $location$as succeeded" "$warning"
