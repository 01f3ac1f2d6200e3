# download ROOT GROUP_ID DEPLOYMENT_ID SHA256 EXISTING_BUNDLE MAX_REVISIONS LAST_SUCCESSFUL
# DownloadBundle: take the bundle from EXISTING_BUNDLE (a revision already on the host) or from
# stdin, check its sha256, unpack it into deployment-archive/, keep MAX_REVISIONS directories.
# A bundle already on the host was unpacked there too: its archive is hard-linked instead of
# unpacked again (a redeploy or a rollback then writes no file data), as the agent's archive
# reuse does with copies. The `.unpacked` marker says an archive was completely unpacked.
set -eu
root=$1 gid=$2 did=$3 sha=$4 existing=$5 keep=$6 last=$7
dir="$root/$gid/$did"
instr="$root/deployment-instructions"
for d in "$dir/logs" "$instr" "$root/ongoing-deployment"; do [ -d "$d" ] || mkdir -p "$d"; done
printf 'DownloadBundle\n%s\n' "$dir" > "$root/ongoing-deployment/$did"
if [ -n "$existing" ] && [ -f "$existing" ]; then
    if [ "$existing" != "$dir/bundle.tar" ]; then
        ln -f "$existing" "$dir/bundle.tar" 2>/dev/null || cp "$existing" "$dir/bundle.tar"
    fi
    printf 'reused the bundle already on the host: %s\n' "$existing"
    source_dir=${existing%/bundle.tar}
else
    # A bundle counts as on the host once bundle.sha256 is written next to it (the probe looks
    # for both): until then a partial or wrong one is never reused. A bundle.tar an earlier
    # attempt left may be a hard link to another deployment's bundle: never written through.
    if [ -e "$dir/bundle.sha256" ] || [ -e "$dir/bundle.tar" ]; then
        rm -f "$dir/bundle.sha256" "$dir/bundle.tar"
    fi
    # cat's own message says why a write failed (a full disk).
    if ! cat > "$dir/bundle.tar"; then
        printf 'the bundle could not be written to %s\n' "$dir/bundle.tar" >&2
        exit 3
    fi
    # OpenSSL uses the CPU's SHA instructions; coreutils' sha256sum (9.1) does not: 9-14 ms of
    # host CPU against 21-52 for a 5 MB bundle, on every host of every first deployment.
    got=$(openssl dgst -sha256 -r "$dir/bundle.tar" 2> /dev/null) || got=
    got=${got%% *}
    if [ "$got" != "$sha" ]; then
        # Not the bundle sent, or an openssl that failed or printed something else: sha256sum
        # has the last word (reading stdin: it escapes a file name holding a backslash).
        got=$(sha256sum < "$dir/bundle.tar")
        got=${got%% *}
    fi
    if [ "$got" != "$sha" ]; then
        echo "bundle checksum mismatch: expected $sha, received $got" >&2
        exit 3
    fi
    echo "received the bundle"
fi
printf '%s\n' "$sha" > "$dir/bundle.sha256"
if [ -e "$dir/.unpacked" ]; then rm -f "$dir/.unpacked"; fi
if [ -e "$dir/deployment-archive" ]; then rm -rf "$dir/deployment-archive"; fi
unpacked=
source_dir=${source_dir:-$dir}
if [ "$source_dir" != "$dir" ] && [ -d "$source_dir/deployment-archive" ] \
    && read -r unpacked 2> /dev/null < "$source_dir/.unpacked" && [ "$unpacked" = "$sha" ] \
    && cp -al "$source_dir/deployment-archive" "$dir/deployment-archive"; then
    printf 'linked the archive unpacked in %s\n' "$source_dir"
else
    if [ -e "$dir/deployment-archive" ]; then rm -rf "$dir/deployment-archive"; fi
    mkdir "$dir/deployment-archive"
    # Files belong to whoever unpacks them (GNU tar's default for anyone but root). The paths
    # reach tar through cd and stdin: GNU tar reads backslash escapes in a -C directory. The
    # session's umask: Install copies the modes unpacked here (busybox tar applies the umask even
    # with -p), and the 0700 deployment-archive/ keeps them from other users.
    (cd "$dir/deployment-archive" && umask "$session_umask" && tar -x --no-same-owner -f - < "$dir/bundle.tar")
fi
printf '%s\n' "$sha" > "$dir/.unpacked"
printf '%s\n' "$dir" > "$instr/${gid}_most_recent_install"
# Retention: keep KEEP directories, this one included; never the last successful one. The
# oldest goes first (`-ot`), found with globs: no list of paths is ever split into words.
count=0
for d in "$root/$gid"/*/; do
    [ "${d%/}" = "$dir" ] || count=$((count + 1))
done
extra=$((count - keep + 1))
while [ "$extra" -gt 0 ]; do
    oldest=
    for d in "$root/$gid"/*/; do
        d=${d%/}
        case $d in "$dir" | "$last") continue ;; esac
        [ -d "$d" ] || continue
        if [ -z "$oldest" ] || [ "$d" -ot "$oldest" ]; then oldest=$d; fi
    done
    [ -n "$oldest" ] || break
    rm -rf "$oldest"
    printf 'removed old revision directory %s\n' "$oldest"
    extra=$((extra - 1))
done
