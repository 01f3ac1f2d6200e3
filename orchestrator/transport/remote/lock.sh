# lock MODE ROOT GROUP_ID DEPLOYMENT_ID [TTL HOLDER [FINISHED]]: the group's lock on this host.
#   acquire    take it (mkdir is atomic); ours already (a resumed deployment) is fine; a lock
#              whose heartbeat is older than TTL seconds, or held by FINISHED (a deployment the
#              controller knows has ended), is moved aside and taken over
#   heartbeat  refresh ours;  release  drop ours;  status  print it;  break  drop it, whoever holds it
# Replies with the frame "lock": "lock=<acquired|reacquired|took-over|held|released|free|...>",
# and for failed "error=<why>"; the holder's lines in the frame "lock-holder".
set -u
mode=$1 root=$2 gid=$3 did=$4 ttl=${5:-120} holder=${6:-} finished=${7:-}
locks="$root/locks"
dir="$locks/$gid"
# Seconds since the epoch: the runner's one reading of the clock plus /proc/uptime (no fork).
if [ -n "${ORCHESTRATOR_CLOCK:-}" ] && read -r up _ 2> /dev/null < /proc/uptime; then
    now=$(((ORCHESTRATOR_CLOCK + ${up%.*} * 100 + 1${up#*.} - 100) / 100))
else
    now=$(date +%s)
fi
frame lock
# show DIR: the holder's lines, a frame of their own (what a file holds is never our answer).
show() {
    frame lock-holder
    [ -f "$1/holder" ] && cat "$1/holder"
    beat=0
    read -r beat 2> /dev/null < "$1/heartbeat" || :
    echo "heartbeat_age=$((now - beat))"
    frame lock
}
take() {
    mkdir "$dir" 2> /dev/null || return 1
    if { printf '%s\ndeployment=%s\n' "$holder" "$did" > "$dir/holder" \
        && echo "$did" > "$dir/deployment" && echo "$now" > "$dir/heartbeat"; } 2> /dev/null; then
        return 0
    fi
    # A full or read-only disk: no half-written lock is left (it would read as held by nobody
    # knows whom), and the controller is told why.
    failed "$(unwritable "$did" "$dir/deployment")"
    rm -rf "$dir"
    exit 0
}
# failed WHY: "lock=failed", then WHY on one line.
failed() {
    echo "lock=failed"
    printf 'error=%s\n' "$(printf '%s\n' "$1" | tr '\n' ' ')"
}
# unwritable VALUE FILE: why VALUE cannot be written to FILE (through cat: dash's printf
# builtin says only "I/O error").
unwritable() { printf '%s\n' "$1" | cat 2>&1 > "$2"; }
# drop ANSWER: remove the lock; "lock=ANSWER", or "lock=failed" and why (a read-only disk).
drop() {
    if why=$(rm -rf "$dir" 2>&1); then echo "lock=$1"; else failed "$why"; fi
}
holder_of() { held_by=; read -r held_by 2> /dev/null < "$dir/deployment" || :; }
ours() { holder_of; [ "$held_by" = "$did" ]; }
case $mode in
acquire)
    # The first program to write on a host: the root's parents are made as any directory of the
    # host would be (only the root and what it holds are private).
    if [ ! -d "$root" ]; then
        [ -z "${root%/*}" ] || (umask "$session_umask" && mkdir -p "${root%/*}")
    else
        # A root an earlier version made open to all is closed: what is under it was not private.
        # (A runas user's ACL entry is masked by this until its hook's supervisor grants it again:
        # a hook of another group running just then keeps its working directory.)
        chmod go-rwx "$root" 2> /dev/null || :
    fi
    [ -d "$locks" ] || mkdir -p "$locks"
    if take; then echo "lock=acquired"; exit 0; fi
    if ours; then echo "$now" > "$dir/heartbeat"; echo "lock=reacquired"; exit 0; fi
    beat=0
    read -r beat 2> /dev/null < "$dir/heartbeat" || :
    holder_of
    if [ $((now - beat)) -gt "$ttl" ] || { [ -n "$finished" ] && [ "$held_by" = "$finished" ]; }; then
        aside="$dir.stale.$did.$$"
        # Of two takers, one wins the rename; the other finds the lock gone or taken.
        if mv "$dir" "$aside" 2> /dev/null && take; then
            echo "lock=took-over"
            show "$aside"
            rm -rf "$aside"
            exit 0
        fi
    fi
    echo "lock=held"
    show "$dir"
    exit 0 ;;
heartbeat)
    if ! ours; then
        echo "lock=lost"
    elif echo "$now" 2> /dev/null > "$dir/heartbeat"; then
        echo "lock=refreshed"
    else
        failed "$(unwritable "$now" "$dir/heartbeat")"
    fi ;;
release) if ours; then drop released; else echo "lock=not-ours"; fi ;;
status) if [ -d "$dir" ]; then echo "lock=held"; show "$dir"; else echo "lock=free"; fi ;;
break) if [ -d "$dir" ]; then show "$dir"; drop broken; else echo "lock=free"; fi ;;
esac
