#!/usr/bin/env bash
# mkbundle.sh DIR: a rootfs in DIR/rootfs made of Debian's busybox-static,
# every applet a symlink, with /etc/passwd and /etc/group. Used by the demo,
# tests and benchmarks.
set -euo pipefail
dir=${1:?usage: mkbundle.sh DIR}
bb=/bin/busybox
[[ -x $bb ]] || { echo "mkbundle: $bb missing: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$dir/rootfs"/{bin,etc,tmp,root,proc,sys,dev}
cp "$bb" "$dir/rootfs/bin/busybox"
for a in $("$bb" --list); do
	[[ $a == busybox ]] || ln -sf busybox "$dir/rootfs/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/rootfs/etc/group"
chmod 1777 "$dir/rootfs/tmp"
echo "$dir"
