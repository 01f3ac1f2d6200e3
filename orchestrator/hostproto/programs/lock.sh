# lock MODE ROOT GROUP_ID DEPLOYMENT_ID [TTL HOLDER [FINISHED]]: the group's lock on this host.
#   acquire    take it; ours already (a resumed deployment) is fine; a lock whose heartbeat is
#              older than TTL seconds, or held by FINISHED (a deployment the controller knows has
#              ended), is moved aside and taken over
#   heartbeat  refresh ours;  release  drop ours;  status  print it;  break  drop it, whoever holds it
# Replies with the frame "lock": "lock=<acquired|reacquired|took-over|held|released|free|...>",
# and for failed "error=<why>"; the holder's lines in the frame "lock-holder".
#
# Exactly one holder, whatever runs at once:
# - A lock is built whole in a directory of its own (.new.*) and renamed into place; rename(2)
#   onto a directory that is not empty fails, so of two takers one puts its lock there, and
#   nobody ever reads a lock without its holder, heartbeat and token.
# - A lock leaves its place only by a rename to its tombstone, .gone.<its token> (a takeover, a
#   release, a break). Of two takers that judged the same lock stale, one moves it; the other's
#   rename fails on the tombstone, and it never moves the lock that replaced the one it judged.
# - A heartbeat is written aside and renamed over the old one: never read half-written.
# Tombstones are swept KEEP seconds after burial: a taker stalled for longer between reading a
# lock and moving it would find the lock it moved is not the one it judged, and puts it back.
set -u
mode=$1 root=$2 gid=$3 did=$4 ttl=${5:-120} holder=${6:-} finished=${7:-}
locks="$root/locks"
dir="$locks/$gid"
keep=3600
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
    read_lock "$1"
    echo "heartbeat_age=$((now - beat))"
    frame lock
}
# failed WHY: "lock=failed", then WHY on one line.
failed() {
    echo "lock=failed"
    printf 'error=%s\n' "$(printf '%s\n' "$1" | tr '\n' ' ')"
}
# unwritable VALUE FILE: why VALUE cannot be written to FILE (through cat: dash's printf
# builtin says only "I/O error").
unwritable() { printf '%s\n' "$1" | cat 2>&1 > "$2"; }
# read_lock DIR: its token, its holder's deployment (held_by) and heartbeat (beat); found: the
# directory is there. A lock an older orchestrator wrote has no token: its group and heartbeat
# name it. The token is read first: were the lock replaced meanwhile, the older one is judged.
read_lock() {
    held_by= beat= token= found=
    [ -d "$1" ] && found=1
    read -r token 2> /dev/null < "$1/token" || :
    read -r held_by 2> /dev/null < "$1/deployment" || :
    read -r beat 2> /dev/null < "$1/heartbeat" || :
    case $beat in '' | *[!0-9]*) beat=0 ;; esac
    case $token in '' | *[!A-Za-z0-9._-]*) token="$gid.legacy-$beat" ;; esac
}
ours() { read_lock "$dir"; [ "$held_by" = "$did" ]; }
# stale DIR: there, and its heartbeat is older than TTL or its holder is FINISHED.
stale() {
    read_lock "$1"
    [ -n "$found" ] || return 1
    [ $((now - beat)) -gt "$ttl" ] || { [ -n "$finished" ] && [ "$held_by" = "$finished" ]; }
}
# build: our lock, whole, in a directory nobody else uses ($new). Its heartbeat is written first:
# the sweep ages a left-over by it.
build() {
    [ -d "$locks" ] || mkdir -p "$locks" 2> /dev/null
    # Its token: the time and mktemp's random letters, a name for its tombstone whatever the
    # group's id holds.
    if ! new=$(mktemp -d "$locks/.new.$now.XXXXXXXXXX" 2>&1); then
        failed "$new"
        new=
        exit 0
    fi
    if { echo "$now" > "$new/heartbeat" && printf '%s\n' "${new##*/.new.}" > "$new/token" \
        && printf '%s\ndeployment=%s\n' "$holder" "$did" > "$new/holder" \
        && echo "$did" > "$new/deployment"; } 2> /dev/null; then
        return 0
    fi
    # A full or read-only disk: the controller is told why, and nothing is left behind.
    failed "$(unwritable "$did" "$new/deployment")"
    exit 0
}
# take: put our lock in place, if the place is free.
take() { [ -n "$new" ] && mv -T "$new" "$dir" 2> /dev/null && new=; }
# bury TOKEN [stale]: move the lock that holds TOKEN (and, asked so, is still stale) from its
# place to its tombstone, $grave. False when it is not there; and then $why says why when the
# rename failed for another reason (a read-only disk) and the tombstone is not there either.
bury() {
    grave="$locks/.gone.$1"
    why=$(mv -T "$dir" "$grave" 2>&1) || return 1
    why=
    read_lock "$grave"
    if [ "$token" != "$1" ] || { [ -n "${2:-}" ] && ! stale "$grave"; }; then
        # Not the lock judged (its tombstone swept while we stalled), or its holder beat in
        # between: put it back.
        mv -T "$grave" "$dir" 2> /dev/null
        return 1
    fi
    echo "$now" 2> /dev/null > "$grave/gone"
}
# sweep: tombstones, and locks a taker never finished building, KEEP seconds after their time.
sweep() {
    for old in "$locks"/.gone.* "$locks"/.new.*; do
        [ -d "$old" ] || continue
        when=
        case $old in
        */.gone.*) read -r when 2> /dev/null < "$old/gone" || echo "$now" 2> /dev/null > "$old/gone" ;;
        *) read -r when 2> /dev/null < "$old/heartbeat" || : ;;
        esac
        case $when in '' | *[!0-9]*) continue ;; esac
        if [ $((now - when)) -gt "$keep" ]; then rm -rf "$old" 2> /dev/null; fi
    done
}
# refresh: our heartbeat now, written aside and renamed over the old one; why in $why if not.
refresh() {
    beat_file="$dir/.beat.$$"
    if echo "$now" 2> /dev/null > "$beat_file" && mv -f "$beat_file" "$dir/heartbeat" 2> /dev/null; then
        return 0
    fi
    why=$(unwritable "$now" "$beat_file")
    rm -f "$beat_file" 2> /dev/null
    return 1
}
# heartbeat ANSWER: refresh ours, then "lock=ANSWER"; lost (and who holds it now, if anyone)
# if it is not ours, before or after.
heartbeat() {
    if ours && refresh && ours; then
        echo "lock=$1"
    elif ours; then
        failed "${why:-cannot replace $dir/heartbeat}"
    else
        echo "lock=lost"
        if [ -n "$found" ]; then show "$dir"; fi
    fi
}
new=
trap 'if [ -n "$new" ]; then rm -rf "$new"; fi' EXIT
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
    build
    if take; then echo "lock=acquired"; exit 0; fi
    if ours; then heartbeat reacquired; exit 0; fi
    if stale "$dir" && bury "$token" stale; then
        if take; then
            echo "lock=took-over"
            show "$grave"
            sweep
            exit 0
        fi
    fi
    # The place was free for an instant (the lock released, or moved aside by another taker that
    # has not put its own there yet): ours if we are first.
    if take; then echo "lock=acquired"; exit 0; fi
    echo "lock=held"
    show "$dir"
    exit 0 ;;
heartbeat) heartbeat refreshed ;;
release)
    if ! ours; then
        echo "lock=not-ours"
    elif bury "$token"; then
        echo "lock=released"
        sweep
    elif [ -n "$why" ] && [ ! -d "$grave" ] && ours; then
        failed "$why"
    else
        echo "lock=not-ours"
    fi ;;
status) if [ -d "$dir" ]; then echo "lock=held"; show "$dir"; else echo "lock=free"; fi ;;
break)
    if [ ! -d "$dir" ]; then
        echo "lock=free"
    else
        show "$dir"
        if bury "$token"; then
            echo "lock=broken"
            sweep
        elif [ -n "$why" ] && [ ! -d "$grave" ] && [ -d "$dir" ]; then
            failed "$why"
        else
            echo "lock=broken" # moved aside by another taker or breaker meanwhile
        fi
    fi ;;
esac
