# install ROOT GROUP_ID DEPLOYMENT_ID < instructions
# Install: check every conflict first (a refused install leaves the host as it was), then remove
# the previous install's files in reverse order, then copy and mkdir, recording each path in the
# cleanup file before writing it, then apply permissions to what this install made.
set -eu
root=$1 gid=$2 did=$3
dir="$root/$gid/$did"
archive="$dir/deployment-archive"
instr="$root/deployment-instructions"
cleanup="$instr/$gid-cleanup"
plan="$dir/install-instructions"
tab=$(printf '\t')
mkdir -p "$instr" "$root/ongoing-deployment"
printf 'Install\n%s\n' "$dir" > "$root/ongoing-deployment/$did"
cat > "$plan"

behavior=DISALLOW
conflicts=0
while IFS="$tab" read -r kind a b c d; do
    case $kind in
    B) behavior=$a ;;
    D)
        if [ -e "$b" ] && [ ! -d "$b" ] && ! grep -qxF -- "$b" "$cleanup" 2>/dev/null; then
            echo "cannot create directory $b: a file is in the way" >&2
            conflicts=$((conflicts + 1))
        fi ;;
    F)
        if [ "$b" = 0 ] && { [ -e "$d" ] || [ -L "$d" ]; }; then
            if [ -d "$d" ] && [ ! -L "$d" ]; then
                echo "cannot install $d: a directory is in the way" >&2
                conflicts=$((conflicts + 1))
            elif [ "$behavior" = DISALLOW ]; then
                echo "The deployment failed because a specified file already exists at this location: $d" >&2
                conflicts=$((conflicts + 1))
            fi
        fi ;;
    esac
done < "$plan"
if [ "$conflicts" -gt 0 ]; then
    echo "install refused before any change: $conflicts conflict(s) (file_exists_behavior $behavior)" >&2
    exit 10
fi

removed=0
if [ -f "$cleanup" ]; then
    # A last line without a newline is a partial write: `read` skips it, as the agent does.
    # Reverse order; files and links in batches of one rm each, then directories (deepest
    # first) in one rmdir that skips the ones that are not empty.
    reverse="$dir/cleanup.reverse"
    while IFS= read -r path; do printf '%s\n' "$path"; done < "$cleanup" | tac > "$reverse"
    set --
    while IFS= read -r path; do
        if [ -L "$path" ] || [ -f "$path" ]; then
            set -- "$@" "$path"
            if [ $# -ge 256 ]; then rm -f -- "$@"; set --; fi
        fi
    done < "$reverse"
    if [ $# -gt 0 ]; then rm -f -- "$@"; fi
    set --
    while IFS= read -r path; do
        if [ -d "$path" ] && [ ! -L "$path" ]; then set -- "$@" "$path"; fi
    done < "$reverse"
    if [ $# -gt 0 ]; then rmdir -- "$@" 2> /dev/null || :; fi
    removed=1
    rm -f "$cleanup" "$reverse"
fi

# Copies go in batches, one cp per destination directory: every path of a batch is recorded
# in the cleanup file before the batch is written.
copied=0
made_dirs=0
batch_dir=""
: > "$cleanup"
set --
while IFS="$tab" read -r kind a b c d; do
    case $kind in
    J) printf '%s\n' "$a" > "$instr/$gid-install.json" ;;
    D)
        if [ ! -d "$b" ]; then
            mkdir -- "$b"
            printf '%s\n' "$b" >> "$cleanup"
            eval "made_$a=1"
            made_dirs=$((made_dirs + 1))
        fi ;;
    F)
        if [ "$b" = 0 ] && [ "$behavior" = RETAIN ] && { [ -e "$d" ] || [ -L "$d" ]; }; then
            echo "retained existing $d"
            continue
        fi
        printf '%s\n' "$d" >> "$cleanup"
        if [ -L "$d" ] || [ -e "$d" ]; then rm -f -- "$d"; fi
        if [ "${d%/*}" != "$batch_dir" ] || [ $# -ge 256 ]; then
            if [ $# -gt 0 ]; then cp -P -p -- "$@" "$batch_dir/"; set --; fi
            batch_dir=${d%/*}
        fi
        set -- "$@" "$archive/$c"
        eval "made_$a=1"
        copied=$((copied + 1)) ;;
    esac
done < "$plan"
if [ $# -gt 0 ]; then cp -P -p -- "$@" "$batch_dir/"; set --; fi

while IFS="$tab" read -r kind index mode owner group acls context path; do
    [ "$kind" = P ] || continue
    eval "done_here=\${made_$index:-}"
    [ -n "$done_here" ] || continue
    [ "$mode" = - ] || chmod -- "$mode" "$path"
    if [ "$acls" != - ]; then
        command -v setfacl > /dev/null || { echo "setfacl is not installed: cannot apply acls to $path" >&2; exit 11; }
        setfacl -m "$acls" "$path"
    fi
    if [ "$context" != - ]; then
        command -v semanage > /dev/null || { echo "semanage is not installed: cannot set the SELinux context of $path" >&2; exit 11; }
        ctype=$(printf '%s' "$context" | cut -d: -f2)
        semanage fcontext -a -t "$ctype" "$path" && restorecon "$path"
        printf 'semanage\0%s\n' "$path" >> "$cleanup"
    fi
    if [ "$owner" != - ] || [ "$group" != - ]; then
        spec=""
        [ "$owner" = - ] || spec=$owner
        [ "$group" = - ] || spec="$spec:$group"
        chown -h -- "$spec" "$path"
    fi
done < "$plan"

printf '%s\n' "$dir" > "$instr/${gid}_last_successful_install"
echo "installed $copied file(s), created $made_dirs directorie(s); previous install removed: $removed"
