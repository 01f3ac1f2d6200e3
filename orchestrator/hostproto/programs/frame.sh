# The reply framing every program shares (read by orchestrator/hostproto/framing.py).
# The session's secret is the first line of stdin: never an argument, which `ps` would show to
# every user of the host, a hook's `runas` user too; and never exported to what programs start.
IFS= read -r boundary || exit 1
# frame NAME: what is printed after this, up to the next frame, is the reply's section NAME, byte
# for byte. No host data printed in a section can end it or start another: it cannot hold the
# secret. (The marker's leading newline belongs to the marker, not to the section before it.)
frame() { printf '\n%s %s\n' "$boundary" "$1"; }
