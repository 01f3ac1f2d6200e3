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
# The files this install may keep: only when the previous install came from this same bundle.
same=0 had_previous=0 previous_dir= previous_sha= sha=
[ -f "$cleanup" ] && had_previous=1
read -r sha 2> /dev/null < "$dir/bundle.sha256" || :
IFS= read -r previous_dir 2> /dev/null < "$instr/${gid}_last_successful_install" || :
[ -z "$previous_dir" ] || read -r previous_sha 2> /dev/null < "$previous_dir/bundle.sha256" || :
[ "$had_previous" = 1 ] && [ -n "$sha" ] && [ "$previous_sha" = "$sha" ] && same=1

# install.previous and install.stat stay in the deployment directory with install.sh, the script
# made from them (what the install saw and did, for whoever looks into a failure); revision
# retention removes them with the rest.
# One `stat` of every path the install decides on: the previous install's (complete lines only:
# a last line without a newline is a partial write, skipped as the agent does; absolute paths
# only; newest first, kept in install.previous), every destination, and, for a redeploy of the
# same bundle, the archive's files the previous install owns (rsync's quick check: type, mode,
# size, mtime). The host reads its own cleanup file: the controller never sees it.
# Paths reach awk through its environment: `-v` would read a backslash in them as an escape.
# Paths go to xargs NUL-terminated: -0 is GNU's and busybox's (-d is GNU's only).
: > "$dir/install.previous"
export plan archive cleanup
previous="$dir/install.previous" stats="$dir/install.stat" audit="$instr/$gid-install.json"
export previous stats audit
{ [ "$had_previous" = 0 ] || cat "$cleanup"; printf '\n'; } | awk -F "$tab" -v same="$same" '
    BEGIN { plan = ENVIRON["plan"]; archive = ENVIRON["archive"]; previous = ENVIRON["previous"] }
    FILENAME != plan {
        if (FNR > 1 && prev ~ /^\//) { lines[++n] = prev; owned[prev] = 1 }
        prev = $0; next
    }
    !listed { for (i = n; i > 0; i--) { printf "%s%c", lines[i], 0; print lines[i] > previous } listed = 1 }
    $1 == "D" { printf "%s%c", $3, 0 }
    $1 == "F" { printf "%s%c", $4, 0; if (same && ($4 in owned)) printf "%s%c", archive "/" $3, 0 }' - "$plan" \
    | { xargs -0 -r stat -c "%F$tab%f %s %Y$tab%n" -- 2> /dev/null || :; } > "$dir/install.stat"

# Everything else is decided by one awk, which writes the script that does it: conflicts first
# (a refused install leaves the host as it was), then the previous install's files removed, the
# new cleanup file written, directories made, files copied, permissions applied.
awk -F "$tab" -v same="$same" -v had_previous="$had_previous" -v umask="$session_umask" '
    BEGIN {
        stats = ENVIRON["stats"]; previous = ENVIRON["previous"]; archive = ENVIRON["archive"]
        cleanup = ENVIRON["cleanup"]; audit = ENVIRON["audit"]
    }
    function q(s) { gsub(/\047/, "\047\\\047\047", s); return "\047" s "\047" }
    function conflict(message) { print message > "/dev/stderr"; conflicts++ }
    function refused(count) {
        return "install refused before any change: " count " conflict(s) (file_exists_behavior " behavior ")"
    }
    function flush() {
        if (batch != "") print "cp -P -p --remove-destination --" batch " " q(batch_dir "/")
        batch = ""; batched = 0
    }
    # "COMMAND \<newline> PATH \<newline> ... THEN": a path a line, however many (a string that
    # grows by a path at a time costs awk the square of their number).
    function each(command, list, n, then,    i) {
        print command " \\"
        for (i = 1; i <= n; i++) print "    " q(list[i]) " \\"
        print "    " then
    }
    # The paths of one mode, acl or owner, kept as a list (not a string, as each() says).
    function member(tool, key, path,    g) {
        g = group[tool, key]
        if (!g) { g = group[tool, key] = ++ngroups; gtool[g] = tool; gkey[g] = key }
        gpath[g, ++gcount[g]] = path
    }
    # One xargs per mode, acl or owner: "printf '%s\0' PATHS | xargs -0 -r TOOL KEY --".
    function apply(tool,    g, i, list) {
        for (g = 1; g <= ngroups; g++) {
            if (gtool[g] != tool) continue
            for (i = 1; i <= gcount[g]; i++) list[i] = gpath[g, i]
            each(nul, list, gcount[g], xargs tool " " q(gkey[g]) " --")
        }
    }
    FILENAME == stats { type[$3] = $1; quick[$3] = $2; next }
    FILENAME == previous { owned[$0] = 1; order[++nprevious] = $0; next }
    $1 == "J" { json = $2; next }
    $1 == "B" { behavior = $2; next }
    $1 == "D" {
        t = type[$3]
        if (!($3 in owned)) {
            if (t == "directory") next
            # A link to a directory is no conflict (the copies go through it); checked in the
            # script, before anything changes.
            if (t == "symbolic link") { linked[++nlinked] = $3; next }
            if (t != "") { conflict("cannot create directory " $3 ": a file is in the way"); next }
        }
        # Recorded before anything is written. A directory of the previous install that this one
        # makes again stays where it is (its old files are removed from it): no rmdir and mkdir
        # of the same path, and none at all for a redeploy or a rollback of the same layout.
        records[++nrecords] = $3; made[$2] = 1; dirs++
        if (t == "directory") remade[$3] = 1
        else mkdirs[++nmkdirs] = $3
        next
    }
    # A file the previous install owns (in its cleanup file) is adopted: no conflict.
    $1 == "F" {
        if (!($4 in owned) && ($4 in type)) {
            if (type[$4] == "directory") {
                conflict("cannot install " $4 ": a directory is in the way"); next
            }
            if (behavior == "DISALLOW") {
                conflict("The deployment failed because a specified file already exists at this location: " $4)
                next
            }
            # Reported as a count and the first few: the output stays small however many.
            if (behavior == "RETAIN") { if (++retained <= 5) kept_names[retained] = $4; next }
        }
        records[++nrecords] = $4; made[$2] = 1
        if (same && ($4 in owned) && quick[$4] ~ /^8/ && quick[$4] == quick[archive "/" $3]) {
            keep[$4] = 1; unchanged++; next
        }
        # A directory in the way is owned by the previous install (removed by the rmdir pass) or a
        # conflict already: only files and links go to the removal before a non-GNU cp.
        if (($4 in type) && type[$4] != "directory") inway[++ninway] = $4
        # The plan keeps the name of every file (a file source goes to DESTINATION/NAME, a tree
        # keeps its names), so a file is copied into the directory of its destination: one cp for
        # many files of the same directory.
        parent = $4; sub("/[^/]*$", "", parent)  # not /\/[^\/]*$/: busybox reads [^\/] as "not \ or /"
        copies[++ncopies] = $3 "\t" parent
        copied++; replaced[$4] = 1
        next
    }
    $1 == "P" && ($2 in made) {
        if ($3 != "-") member("chmod", $3, $8)
        if ($6 != "-") { member("setfacl -m", $6, $8); need_setfacl = 1 }
        if ($7 != "-") { contexts[++ncontexts] = $7 "\t" $8; need_semanage = 1 }
        if ($4 != "-" || $5 != "-") {
            member("chown -h", ($4 == "-" ? "" : $4) ($5 == "-" ? "" : ":" $5), $8)
        }
    }
    END {
        if (conflicts) { print refused(conflicts) > "/dev/stderr"; exit 10 }
        for (i = 1; i <= nlinked; i++) {
            why = "cannot create directory " linked[i] ": a file is in the way"
            print "[ -d " q(linked[i]) " ] || { printf \047%s\\n\047 " q(why) " " q(refused(1)) " >&2; exit 10; }"
        }
        # The previous install, newest first: files and links, then directories (deepest
        # first), keeping the ones that hold something else. A file this install copies to the
        # same path is left to its copy, which removes it first (cp --remove-destination): no
        # removal pass at all for a rollback of the same layout. busybox cp takes that option
        # but writes through a link or a hard link: without GNU cp (one `cp --version` when
        # something is in the way), what is in the way of a copy is removed first.
        for (i = 1; i <= nprevious; i++) {
            path = order[i]
            if (!(path in type) || (path in keep)) continue
            if (type[path] != "directory") { if (!(path in replaced)) removals[++nremovals] = path }
            else if (!(path in remade)) rmdirs[++nrmdirs] = path
        }
        lines = "printf \047%s\\n\047"
        nul = "printf \047%s\\0\047"
        # mkdir and rmdir through xargs too: a tree of many directories is longer than one
        # command line may be (E2BIG).
        xargs = "| xargs -0 -r "
        if (nremovals) each(nul, removals, nremovals, xargs "rm -f --")
        gnu = "case $(cp --version 2> /dev/null) in *\"GNU coreutils\"*) ;; *) "
        if (ninway) each(gnu nul, inway, ninway, xargs "rm -f -- ;; esac")
        if (nrmdirs) each(nul, rmdirs, nrmdirs, xargs "rmdir --ignore-fail-on-non-empty -- 2> /dev/null || :")
        if (nrecords) each(lines, records, nrecords, "> " q(cleanup))
        else print ": > " q(cleanup)
        print lines " " q(json) " > " q(audit)
        # The records above are private (umask.sh); what is installed is made as it was before.
        print "umask " umask
        if (nmkdirs) each(nul, mkdirs, nmkdirs, xargs "mkdir -p --")
        if (retained) {
            kept_list = kept_names[1]
            for (i = 2; i <= 5 && i <= retained; i++) kept_list = kept_list ", " kept_names[i]
            if (retained > 5) kept_list = kept_list " and " retained - 5 " more"
            print "printf \047%s\\n\047 " q("retained " retained " existing file(s) (file_exists_behavior RETAIN): " kept_list)
        }
        for (i = 1; i <= ncopies; i++) {
            split(copies[i], parts, "\t")
            if (parts[2] != batch_dir || batched >= 256) { flush(); batch_dir = parts[2] }
            batch = batch " " q(archive "/" parts[1]); batched++
        }
        flush()
        apply("chmod")
        if (need_setfacl) print "command -v setfacl > /dev/null || { echo \"setfacl is not installed: cannot apply acls\" >&2; exit 11; }"
        apply("setfacl -m")
        if (need_semanage) print "command -v semanage > /dev/null || { echo \"semanage is not installed: cannot set SELinux contexts\" >&2; exit 11; }"
        for (i = 1; i <= ncontexts; i++) {
            split(contexts[i], parts, "\t"); split(parts[1], context, ":")
            print "semanage fcontext -a -t " q(context[2]) " " q(parts[2]) " && restorecon " q(parts[2])
            print "printf \047semanage\\0%s\\n\047 " q(parts[2]) " >> " q(cleanup)
        }
        apply("chown -h")
        print "printf \047%s\\n\047 " q("installed " copied + 0 " file(s), kept " unchanged + 0 " unchanged, made or kept " dirs + 0 " directorie(s); previous install removed: " had_previous)
    }' "$dir/install.stat" "$dir/install.previous" "$plan" > "$dir/install.sh"
sh -eu "$dir/install.sh"
printf '%s\n' "$dir" > "$instr/${gid}_last_successful_install"
