# probe ROOT GROUP_ID [DEPLOYMENT_ID]: what this host holds for a deployment group, in one round
# trip; with a deployment id, also the event that deployment was in (for resume).
# Prints key=value lines, then the last successful install's appspec and the cleanup file.
set -u
root=$1 gid=$2 did=${3:-}
instr="$root/deployment-instructions"
last=""
[ -f "$instr/${gid}_last_successful_install" ] && last=$(cat "$instr/${gid}_last_successful_install")
printf 'last_successful=%s\n' "$last"
[ -f "$instr/${gid}_last_deployment" ] && printf 'last_deployment=%s\n' "$(cat "$instr/${gid}_last_deployment")"
for d in "$root/$gid"/*/; do
    [ -f "${d}bundle.sha256" ] && [ -f "${d}bundle.tar" ] && printf 'bundle=%s %sbundle.tar\n' "$(cat "${d}bundle.sha256")" "$d"
done
printf 'user=%s\n' "$(id -un)"
if [ -n "$did" ] && [ -f "$root/ongoing-deployment/$did" ]; then
    printf 'ongoing=%s\n' "$(head -n 1 "$root/ongoing-deployment/$did")"
fi
echo '---appspec---'
if [ -n "$last" ]; then
    if [ -f "$last/deployment-archive/appspec.yml" ]; then cat "$last/deployment-archive/appspec.yml"
    elif [ -f "$last/deployment-archive/appspec.yaml" ]; then cat "$last/deployment-archive/appspec.yaml"
    else echo '__missing__'
    fi
fi
echo '---cleanup---'
[ -f "$instr/$gid-cleanup" ] && cat "$instr/$gid-cleanup"
exit 0
