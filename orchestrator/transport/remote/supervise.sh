# supervise BASE ROOT GROUP_ID DEPLOYMENT_ID EVENT SCRIPT LOCATION TIMEOUT RUNAS ARCHIVE GRACE
# Runs detached from the SSH session: one hook script in its own process group, stdin from
# /dev/null, output to files (a child that keeps them open cannot hang the hook), a timeout with
# SIGTERM to the group and SIGKILL after GRACE seconds; writes BASE.status when done.
set -u
base=$1 root=$2 gid=$3 did=$4 event=$5 script=$6 location=$7 timeout=$8 runas=$9
shift 9
archive=$1 grace=$2
dir="$root/$gid/$did"
[ -d "$dir/logs" ] || mkdir -p "$dir/logs"
[ -d "$root/ongoing-deployment" ] || mkdir -p "$root/ongoing-deployment"
printf '%s\n%s\n' "$event" "$dir" > "$root/ongoing-deployment/$did"
finish() {
    # finish CODE ERROR_CODE MESSAGE [WARNING]
    { printf 'status=%s %s\n' "$1" "$2"; printf 'message=%s\n' "$3"; printf 'warning=%s\n' "${4:-}"; } > "$base.status.part"
    log_output
    mv -f "$base.status.part" "$base.status"
    exit 0
}
log_output() {
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    {
        printf '%s LifecycleEvent - %s\n' "$now" "$event"
        printf '%s Script - %s\n' "$now" "$location"
        for stream in stdout stderr; do
            file="$base.out"
            [ "$stream" = stderr ] && file="$base.err"
            [ -f "$file" ] || continue
            while IFS= read -r line || [ -n "$line" ]; do
                printf '%s [%s]%s\n' "$now" "$stream" "$line"
            done < "$file"
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
# With `become: sudo` this program already runs as root, so `su` reaches any runas user.
if [ -z "$runas" ] || [ "$runas" = "$(id -un)" ]; then
    set -- "$script"
elif [ "$(id -u)" = 0 ]; then
    set -- su -s /bin/sh "$runas" -c "\"\$0\"" "$script"
else
    finish 4 ScriptFailed "Script at specified location: $location cannot run as user $runas: connected as $(id -un) without root (become: none)"
fi
# coreutils' timeout leads its own process group (the hook's), sends it SIGTERM at the deadline
# and SIGKILL GRACE seconds later, and exits 124 when the deadline passed.
# Seconds since boot from /proc (no fork); `date` where there is no /proc.
uptime_seconds() { if read -r up _ < /proc/uptime 2> /dev/null; then echo "${up%.*}"; else date +%s; fi; }
started=$(uptime_seconds)
timeout -k "$grace" "$timeout" "$@" < /dev/null > "$base.out" 2> "$base.err" &
pid=$!
echo "$pid" > "$base.hookpid"
wait "$pid"
code=$?
# 124: the deadline passed; 137: it also needed the SIGKILL (or something else killed it).
if [ "$code" -eq 124 ] || { [ "$code" -eq 137 ] && [ $(($(uptime_seconds) - started)) -ge "$timeout" ]; }; then
    : > "$base.timedout"
fi
warning=""
# A child that detaches (setsid, a daemon) leaves the group within moments: give it a second.
i=0
while kill -0 "-$pid" 2> /dev/null && [ "$i" -lt 10 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "-$pid" 2> /dev/null; then
    warning="the script exited but a process it started still runs (process group $pid); its output was not waited for"
fi
as=""
[ -n "$runas" ] && as=" run as user $runas"
if [ -f "$base.aborted" ]; then
    finish "$code" ScriptFailed "Script at specified location: $location$as was terminated: the deployment was stopped with --force" "$warning"
elif [ -f "$base.timedout" ]; then
    finish "$code" ScriptTimedOut "Script at specified location: $location$as failed to complete in $timeout seconds" "$warning"
elif [ "$code" -ne 0 ]; then
    finish "$code" ScriptFailed "Script at specified location: $location$as failed with exit code $code" "$warning"
fi
finish 0 Success "Script at specified location: $location$as succeeded" "$warning"
