# runner: run the commands the controller sends, one after another, on this one SSH channel, so a
# deployment's steps cost the host a fork each instead of a channel and a login shell each.
#   request: "<command bytes> <stdin bytes>\n", the command (sh source), then its stdin
#   reply:   "<exit status> <stdout bytes> <stderr bytes>\n", then its stdout, then its stderr
# Exact byte counts need GNU head, which reads no further from a pipe than it is asked to.
set -u
work=$(mktemp -d "${TMPDIR:-/tmp}/orchestrator-runner.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM PIPE
while read -r command_bytes input_bytes; do
    head -c "$command_bytes" > "$work/command"
    if [ "$input_bytes" -gt 0 ]; then
        head -c "$input_bytes" | {
            sh "$work/command" > "$work/out" 2> "$work/err"
            echo "$?" > "$work/status"
            # What the command left unread, so that the next request starts where it should.
            cat > /dev/null
        }
        read -r status < "$work/status"
    else
        sh "$work/command" < /dev/null > "$work/out" 2> "$work/err"
        status=$?
    fi
    set -- $(wc -c "$work/out" "$work/err")
    printf '%s %s %s\n' "$status" "$1" "$3"
    cat "$work/out" "$work/err"
done
