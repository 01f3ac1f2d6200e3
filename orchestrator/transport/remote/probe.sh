# probe ROOT GROUP_ID: what this host holds for a deployment group, in one round trip.
# Prints key=value lines, then the last successful install's appspec and the cleanup file.
set -u
root=$1 gid=$2
instr="$root/deployment-instructions"
last=""
[ -f "$instr/${gid}_last_successful_install" ] && last=$(cat "$instr/${gid}_last_successful_install")
printf 'last_successful=%s\n' "$last"
[ -f "$instr/${gid}_last_deployment" ] && printf 'last_deployment=%s\n' "$(cat "$instr/${gid}_last_deployment")"
for d in "$root/$gid"/*/; do
    [ -f "${d}bundle.sha256" ] && [ -f "${d}bundle.tar" ] && printf 'bundle=%s %sbundle.tar\n' "$(cat "${d}bundle.sha256")" "$d"
done
printf 'user=%s\n' "$(id -un)"
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
