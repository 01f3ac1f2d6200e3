# runner: run the requests the controller sends, one after another, on this one SSH channel, so
# that a deployment's steps cost the host a fork each instead of a channel and a login shell
# each. The shipped programs are defined above this text as functions (`probe ARGS...`), after
# frame.sh, which read the session's secret from the first line of stdin.
#   request: "<stdin bytes> <sh command line>\n", then that many bytes of stdin
#   reply:   the command's stdout (with its programs' frames), then the frame "stderr" and its
#            stderr when there is any, then the frame "exit <exit status>".
# Exact stdin sizes need GNU's or busybox's dd, which read no further from a pipe than asked to.
set -u
# Requests are one line each: an argument's newlines travel as "$newline".
newline='
'
# The host's clock, read once: hook supervisors add /proc/uptime to it instead of forking `date`.
if read -r up _ 2> /dev/null < /proc/uptime; then
    epoch=$(date +%s%N)
    # busybox date has no %N (it prints it as is): whole seconds, in nanoseconds too.
    case $epoch in *[!0-9]* | "") epoch=$(date +%s)000000000 ;; esac
    export ORCHESTRATOR_CLOCK=$((${epoch%???????} - ${up%.*} * 100 - 1${up#*.} + 100))
fi
# coreutils' timeout where the host has it, asked once: a hook's supervisor uses it instead of a
# watcher of its own (busybox's timeout signals the hook's process, not its process group).
case $(timeout --version 2> /dev/null) in *"GNU coreutils"*) export ORCHESTRATOR_GNU_TIMEOUT=1 ;; esac
# The probe names every missing command, but it runs inside this runner: say this one here.
command -v mktemp > /dev/null || { echo "the host lacks mktemp, which orchestrator runs on every host" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/orchestrator-runner.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM PIPE
while IFS= read -r request; do
    input_bytes=${request%% *}
    request=${request#* }
    if [ "$input_bytes" -gt 0 ]; then
        # dd reads 64 KiB at a time where head reads 8 KiB: an eighth of the reads (and of the
        # wake-ups of whatever reads the pipe) for a bundle.
        dd bs=64K iflag=count_bytes,fullblock count="$input_bytes" status=none | {
            command eval "$request" 2> "$work/err"
            echo "$?" > "$work/status"
            # What the command left unread, so that the next request starts where it should.
            # A command that succeeded has read it all: a builtin read finds the end of the
            # input without the fork and exec of a cat.
            if IFS= read -r _; then cat > /dev/null; fi
        }
        read -r status < "$work/status"
    else
        # Every program is a function whose body is a subshell: eval needs no fork of its own.
        # `command` keeps an error in eval from ending the runner.
        command eval "$request" < /dev/null 2> "$work/err"
        status=$?
    fi
    if [ -s "$work/err" ]; then
        frame stderr
        cat "$work/err"
    fi
    frame "exit $status"
done
