# finish ROOT GROUP_ID DEPLOYMENT_ID STATUS SHA256: the host's part of the deployment is over.
set -eu
root=$1 gid=$2 did=$3 status=$4 sha=$5
instr="$root/deployment-instructions"
[ -d "$instr" ] || mkdir -p "$instr"
printf '%s %s %s\n' "$did" "$status" "$sha" > "$instr/${gid}_last_deployment"
rm -f "$root/ongoing-deployment/$did"
