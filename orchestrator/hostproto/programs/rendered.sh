# rendered ROOT GROUP_ID DEPLOYMENT_ID < tar: this host's renderings of the revision's templates
# (made on the controller), unpacked beside the archive, where Install copies them from as it
# copies the bundle's files. A retry replaces what an earlier try left.
set -eu
dir="$1/$2/$3"
[ -d "$dir" ] || mkdir -p "$dir"
rm -rf "$dir/rendered"
mkdir "$dir/rendered"
tar -x -f - -C "$dir/rendered"
