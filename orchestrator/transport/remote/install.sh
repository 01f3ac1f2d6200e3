# install ROOT GROUP_ID DEPLOYMENT_ID < instructions
# Install: check every conflict first (a refused install leaves the host as it was), then remove
# the previous install's files (newest first), then make the directories and copy the files,
# every path recorded in the cleanup file before anything is written, then apply permissions to
# what this install made.
# The instructions are read by awk and the filesystem is touched by a few batched commands: a
# shell loop over a few hundred lines costs the host more than the copying itself.
# Redeploying the bundle the previous install came from keeps the files it installed that are
# unchanged since (same type, mode, size and mtime as in the archive: rsync's quick check) instead
# of removing and copying them again; anything else is replaced as usual.
set -eu
export LC_ALL=C
root=$1 gid=$2 did=$3
dir="$root/$gid/$did"
archive="$dir/deployment-archive"
instr="$root/deployment-instructions"
cleanup="$instr/$gid-cleanup"
plan="$dir/install-instructions"
tab=$(printf '\t')
[ -d "$instr" ] || mkdir -p "$instr"
[ -d "$root/ongoing-deployment" ] || mkdir -p "$root/ongoing-deployment"
printf 'Install\n%s\n' "$dir" > "$root/ongoing-deployment/$did"
cat > "$plan"
# The previous install's paths: the cleanup file, moved to cleanup.previous once it is removed.
previous="$cleanup"
[ -f "$cleanup" ] || { previous="$dir/cleanup.previous"; : > "$previous"; }

# "<type><tab><path>" for each listed path that exists: `lstat` as is, `follow` through links.
lstat() { xargs -r -d '\n' stat -c "%F$tab%n" -- 2> /dev/null || :; }
follow() { xargs -r -d '\n' stat -L -c "%F$tab%n" -- 2> /dev/null || :; }

awk -F "$tab" '$1 == "F" && $3 == 0 { print $5 }' "$plan" | lstat > "$dir/install.files-present"
awk -F "$tab" '$1 == "D" { print $3 }' "$plan" | follow > "$dir/install.dirs-present"
awk -F "$tab" -v files="$dir/install.files-present" -v dirs="$dir/install.dirs-present" '
    FILENAME == files { file_type[$2] = $1; next }
    FILENAME == dirs { dir_type[$2] = $1; next }
    FILENAME != ARGV[ARGC - 1] { owned[$0] = 1; next }
    $1 == "B" { behavior = $2 }
    $1 == "D" && ($3 in dir_type) && dir_type[$3] != "directory" && !($3 in owned) {
        print "cannot create directory " $3 ": a file is in the way"; conflicts++
    }
    $1 == "F" && $3 == 0 && ($5 in file_type) {
        if (file_type[$5] == "directory") {
            print "cannot install " $5 ": a directory is in the way"; conflicts++
        } else if (behavior == "DISALLOW") {
            print "The deployment failed because a specified file already exists at this location: " $5
            conflicts++
        }
    }
    END {
        if (conflicts) {
            print "install refused before any change: " conflicts " conflict(s) (file_exists_behavior " behavior ")"
            exit 10
        }
    }' "$dir/install.files-present" "$dir/install.dirs-present" "$previous" "$plan" >&2

# The files this install may keep: only when the previous install came from this same bundle.
: > "$dir/install.kept"
previous_dir= previous_sha= sha=
read -r sha 2> /dev/null < "$dir/bundle.sha256" || :
read -r previous_dir 2> /dev/null < "$instr/${gid}_last_successful_install" || :
[ -z "$previous_dir" ] || read -r previous_sha 2> /dev/null < "$previous_dir/bundle.sha256" || :
if [ -f "$cleanup" ] && [ -n "$sha" ] && [ "$previous_sha" = "$sha" ]; then
    quick() { xargs -r -d '\n' stat -c "%f %s %Y$tab%n" -- 2> /dev/null || :; }
    awk -F "$tab" '$1 == "F" && $3 == 1 { print $5 }' "$plan" | quick > "$dir/install.dest-stat"
    awk -F "$tab" -v archive="$archive" '$1 == "F" && $3 == 1 { print archive "/" $4 }' "$plan" \
        | quick > "$dir/install.source-stat"
    awk -F "$tab" -v dest="$dir/install.dest-stat" -v source="$dir/install.source-stat" \
        -v archive="$archive" '
        FILENAME == dest { installed[$2] = $1; next }
        FILENAME == source { shipped[$2] = $1; next }
        $1 == "F" && $3 == 1 && installed[$5] ~ /^8/ && installed[$5] == shipped[archive "/" $4] {
            print $5
        }' \
        "$dir/install.dest-stat" "$dir/install.source-stat" "$plan" > "$dir/install.kept"
    rm -f "$dir/install.dest-stat" "$dir/install.source-stat"
fi

removed=0
if [ -f "$cleanup" ]; then
    # Complete lines only (a last line without a newline is a partial write, skipped as the
    # agent does), absolute paths only, newest first: files and links, then directories
    # (deepest first), keeping the ones that hold something else.
    printf '\n' | cat "$cleanup" - | awk '
        NR > 1 && prev ~ /^\// { lines[++n] = prev }
        { prev = $0 }
        END { for (i = n; i > 0; i--) print lines[i] }' | lstat > "$dir/cleanup.present"
    awk -F "$tab" -v kept="$dir/install.kept" '
        FILENAME == kept { keep[$0] = 1; next }
        $1 != "directory" && !($2 in keep) { print $2 }' "$dir/install.kept" "$dir/cleanup.present" \
        | xargs -r -d '\n' rm -f --
    awk -F "$tab" '$1 == "directory" { print $2 }' "$dir/cleanup.present" \
        | xargs -r -d '\n' rmdir --ignore-fail-on-non-empty -- 2> /dev/null || :
    removed=1
    mv -f "$cleanup" "$dir/cleanup.previous"
fi

: > "$cleanup"
# After the removal: the directories that still exist are not this install's to record.
awk -F "$tab" '$1 == "D" { print $3 }' "$plan" | follow > "$dir/install.dirs-present"
awk -F "$tab" -v files="$dir/install.files-present" -v dirs="$dir/install.dirs-present" \
    -v archive="$archive" -v cleanup="$cleanup" -v audit="$instr/$gid-install.json" \
    -v removed="$removed" -v kept="$dir/install.kept" -v previous="$dir/cleanup.previous" '
    function q(s) { gsub(/\047/, "\047\\\047\047", s); return "\047" s "\047" }
    function flush() {
        if (batch != "") print "cp -P -p --remove-destination --" batch " " q(batch_dir "/")
        batch = ""; batched = 0
    }
    # One xargs per mode, acl or owner: "printf '%s\n' PATHS | xargs -r -d '\n' TOOL KEY --".
    function apply(tool, paths,    key) {
        for (key in paths) {
            print "printf \047%s\\n\047" paths[key] " | xargs -r -d \047\\n\047 " tool " " q(key) " --"
        }
    }
    FILENAME == files { file_type[$2] = $1; next }
    FILENAME == dirs { dir_type[$2] = $1; next }
    FILENAME == kept { keep[$0] = 1; next }
    FILENAME == previous { owned[$0] = 1; next }
    $1 == "J" { print $2 > audit; next }
    $1 == "B" { behavior = $2; next }
    $1 == "D" {
        # A directory the previous install made that is still there (it holds kept files, or
        # files of someone else) stays with this install: recorded, its permissions applied.
        if (dir_type[$3] == "directory") {
            if ($3 in owned) { print $3 > cleanup; made[$2] = 1 }
            next
        }
        print $3 > cleanup
        mkdirs = mkdirs " " q($3); made[$2] = 1; made_dirs++
        next
    }
    $1 == "F" {
        if ($3 == 0 && behavior == "RETAIN" && ($5 in file_type)) {
            copies[++ncopies] = "echo " q("retained existing " $5)
            next
        }
        print $5 > cleanup
        made[$2] = 1
        if ($5 in keep) { unchanged++; next }
        parent = $5; sub(/\/[^\/]*$/, "", parent)
        copies[++ncopies] = "F" $4 "\t" parent
        copied++
        next
    }
    $1 == "P" && ($2 in made) {
        if ($3 != "-") modes[$3] = modes[$3] " " q($8)
        if ($6 != "-") { acls[$6] = acls[$6] " " q($8); need_setfacl = 1 }
        if ($7 != "-") { contexts[++ncontexts] = $7 "\t" $8; need_semanage = 1 }
        if ($4 != "-" || $5 != "-") {
            spec = ($4 == "-" ? "" : $4) ($5 == "-" ? "" : ":" $5)
            owners[spec] = owners[spec] " " q($8)
        }
    }
    END {
        close(cleanup)
        if (mkdirs != "") print "mkdir --" mkdirs
        for (i = 1; i <= ncopies; i++) {
            if (substr(copies[i], 1, 1) != "F") { print copies[i]; continue }
            split(substr(copies[i], 2), parts, "\t")
            if (parts[2] != batch_dir || batched >= 256) { flush(); batch_dir = parts[2] }
            batch = batch " " q(archive "/" parts[1]); batched++
        }
        flush()
        apply("chmod", modes)
        if (need_setfacl) print "command -v setfacl > /dev/null || { echo \"setfacl is not installed: cannot apply acls\" >&2; exit 11; }"
        apply("setfacl -m", acls)
        if (need_semanage) print "command -v semanage > /dev/null || { echo \"semanage is not installed: cannot set SELinux contexts\" >&2; exit 11; }"
        for (i = 1; i <= ncontexts; i++) {
            split(contexts[i], parts, "\t"); split(parts[1], context, ":")
            print "semanage fcontext -a -t " q(context[2]) " " q(parts[2]) " && restorecon " q(parts[2])
            print "printf \047semanage\\0%s\\n\047 " q(parts[2]) " >> " q(cleanup)
        }
        apply("chown -h", owners)
        print "echo " q("installed " copied + 0 " file(s), kept " unchanged + 0 " unchanged, created " made_dirs + 0 " directorie(s); previous install removed: " removed)
    }' "$dir/install.files-present" "$dir/install.dirs-present" "$dir/install.kept" \
    "$dir/cleanup.previous" "$plan" > "$dir/install.sh"
sh -eu "$dir/install.sh"
rm -f "$dir/install.files-present" "$dir/install.dirs-present" "$dir/cleanup.present" \
    "$dir/install.kept" "$dir/cleanup.previous"
printf '%s\n' "$dir" > "$instr/${gid}_last_successful_install"
