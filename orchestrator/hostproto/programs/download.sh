# download ROOT GROUP_ID DEPLOYMENT_ID SHA256 EXISTING_BUNDLE MAX_REVISIONS LAST_SUCCESSFUL [FETCH]
# DownloadBundle: take the bundle from EXISTING_BUNDLE (a revision already on the host), else
# fetch it with FETCH (curl or wget) from the bundle store's presigned URL on stdin's first
# line, else read it from stdin; check its sha256, unpack it into deployment-archive/, keep
# MAX_REVISIONS directories. A fetch that fails, or brings something else, exits 4.
# A bundle already on the host was unpacked there too: its archive is hard-linked instead of
# unpacked again (a redeploy or a rollback then writes no file data), as the agent's archive
# reuse does with copies. The `.unpacked` marker says an archive was completely unpacked.
set -eu
# fetch_bundle FILE: the bundle into FILE from the presigned URL on stdin's first line. The URL
# is never an argument (`ps` shows those to every user, and its query is a credential) nor
# written to a file; what the fetch says is printed without any query. The store's refusal is
# named by its HTTP status and its error's Code and Message.
fetch_bundle() {
    IFS= read -r url || { echo "no bundle URL on stdin" >&2; return 1; }
    rc=0 status= err=
    case $fetch in
    curl)
        # -K -: the URL is in curl's configuration, on its stdin. No --fail: an error's body is
        # the store's explanation.
        err=$(printf 'url = "%s"\n' "$url" | curl -sS -K - -o "$1" -w '%{http_code}' \
            --connect-timeout 30 --speed-limit 1024 --speed-time 60 2>&1 > "$1.status") || rc=$?
        IFS= read -r status < "$1.status" || :
        rm -f "$1.status"
        ;;
    wget)
        # Only GNU Wget reads its URL from stdin (--input-file=-); busybox's takes it as an argument.
        case $(wget --version 2> /dev/null) in *"GNU Wget"*) ;; *)
            echo "this host's wget is not GNU Wget, which reads a URL from stdin: install curl or GNU Wget" >&2
            return 1 ;;
        esac
        err=$(printf '%s\n' "$url" | wget -nv -S --content-on-error --tries=1 --timeout=60 \
            -O "$1" -i - 2>&1) || rc=$?
        status=$(printf '%s\n' "$err" | awk '$1 ~ /^HTTP\// { code = $2 } END { print code }')
        ;;
    *) echo "cannot fetch the bundle with '$fetch'" >&2; return 1 ;;
    esac
    [ "$rc" -eq 0 ] && [ "$status" = 200 ] && return 0
    if [ -n "$status" ] && [ "$status" != 000 ] && [ -f "$1" ]; then
        said=$(awk '{ body = body $0 } END {
            if (match(body, /<Code>[^<]*<\/Code>/)) printf "%s", substr(body, RSTART + 6, RLENGTH - 13)
            if (match(body, /<Message>[^<]*<\/Message>/)) printf " (%s)", substr(body, RSTART + 9, RLENGTH - 19)
        }' "$1" 2> /dev/null) || said=
        printf 'the bundle store answered HTTP %s%s\n' "$status" "${said:+ $said}" >&2
    else
        err=$(printf '%s\n' "$err" | awk '{ gsub(/[?][^ \t"]*/, "?<query hidden>"); print }')
        printf 'the bundle could not be fetched from the bundle store with %s: %s\n' "$fetch" "$err" >&2
    fi
    return 1
}
root=$1 gid=$2 did=$3 sha=$4 existing=$5 keep=$6 last=$7 fetch=${8:-}
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
    if [ -n "$fetch" ]; then
        fetch_bundle "$dir/bundle.tar" || { rm -f "$dir/bundle.tar"; exit 4; }
    # cat's own message says why a write failed (a full disk).
    elif ! cat > "$dir/bundle.tar"; then
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
    if [ "$got" != "$sha" ] && [ -n "$fetch" ]; then
        rm -f "$dir/bundle.tar"
        echo "the bundle fetched from the bundle store is not this deployment's: expected $sha, received $got" >&2
        exit 4
    elif [ "$got" != "$sha" ]; then
        echo "bundle checksum mismatch: expected $sha, received $got" >&2
        exit 3
    fi
    if [ -n "$fetch" ]; then echo "fetched the bundle from the bundle store with $fetch"; else echo "received the bundle"; fi
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
