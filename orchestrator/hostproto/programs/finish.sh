# finish ROOT GROUP_ID DEPLOYMENT_ID STATUS SHA256: the host's part of the deployment is over.
# STATUS "-": it is over without a record (the group's lock here is another deployment's now).
set -eu
root=$1 gid=$2 did=$3 status=$4 sha=$5
instr="$root/deployment-instructions"
if [ "$status" != "-" ]; then
    [ -d "$instr" ] || mkdir -p "$instr"
    printf '%s %s %s\n' "$did" "$status" "$sha" > "$instr/${gid}_last_deployment"
fi
rm -f "$root/ongoing-deployment/$did"
