# probe ROOT GROUP_ID [DEPLOYMENT_ID [APPSPEC_BYTES]]: what this host holds for a deployment group,
# in one round trip; with a deployment id, also the event that deployment was in (for resume).
# Replies with the frames "probe" (key=value lines) and "appspec" (the last successful install's
# appspec, its first APPSPEC_BYTES bytes when given: the controller reads no more; "appspec-missing"
# when it is gone). Not the cleanup file: Install reads it on the host (a big tree's is many
# megabytes).
set -u
root=$1 gid=$2 did=${3:-} appspec_bytes=${4:-}
frame probe
# The commands the host programs run (the README's list): a host without one of them fails here,
# before anything on it changes, and the lock is not taken (exit 3). `command -v`: no fork.
tools='awk cat chmod chown cp date dd env id ln mkdir mktemp mv rm rmdir setsid sha256sum sleep stat tail tar tr xargs'
missing=
for tool in $tools; do command -v "$tool" > /dev/null || missing="$missing $tool"; done
if [ -n "$missing" ]; then
    printf 'missing_tools=%s\n' "${missing# }"
    exit 3
fi
# What fetches a bundle from a bundle store (a group's bundle_store): curl, else wget.
fetch=
if command -v curl > /dev/null; then fetch=curl; elif command -v wget > /dev/null; then fetch=wget; fi
printf 'fetch=%s\n' "$fetch"
instr="$root/deployment-instructions"
# One-line files are read with the `read` builtin: no fork per file (IFS= keeps a path's
# leading and trailing spaces).
last=""
[ -f "$instr/${gid}_last_successful_install" ] && IFS= read -r last < "$instr/${gid}_last_successful_install"
printf 'last_successful=%s\n' "$last"
if [ -f "$instr/${gid}_last_deployment" ] && read -r line < "$instr/${gid}_last_deployment"; then
    printf 'last_deployment=%s\n' "$line"
fi
for d in "$root/$gid"/*/; do
    if [ -f "${d}bundle.sha256" ] && [ -f "${d}bundle.tar" ] && read -r sha < "${d}bundle.sha256"; then
        printf 'bundle=%s %sbundle.tar\n' "$sha" "$d"
    fi
done
if [ -n "$did" ] && [ -f "$root/ongoing-deployment/$did" ] && read -r line < "$root/ongoing-deployment/$did"; then
    printf 'ongoing=%s\n' "$line"
fi
appspec=
if [ -n "$last" ]; then
    if [ -f "$last/deployment-archive/appspec.yml" ]; then appspec="$last/deployment-archive/appspec.yml"
    elif [ -f "$last/deployment-archive/appspec.yaml" ]; then appspec="$last/deployment-archive/appspec.yaml"
    else frame appspec-missing
    fi
fi
if [ -n "$appspec" ]; then
    frame appspec
    if [ -n "$appspec_bytes" ]; then
        dd if="$appspec" bs=64K iflag=count_bytes count="$appspec_bytes" status=none
    else
        cat "$appspec"
    fi
fi
exit 0
