#!/usr/bin/env bash
# Builds the busybox test image the peer scenarios use, from Debian's
# busybox-static, without any registry:
#
#   test/peers/mkimage.sh OUTDIR
#
# writes
#   OUTDIR/rootfs.tar  a root filesystem tarball (docker import, podman import)
#   OUTDIR/oci.tar     the same as a one-layer OCI image archive
#                      (ctr image import), named docker.io/hakopeers/busybox:1
set -euo pipefail

out=${1:?usage: $0 OUTDIR}
bb=/bin/busybox
[ -x "$bb" ] || { echo "$0: $bb missing: apt-get install busybox-static" >&2; exit 2; }
# busybox-static, not a dynamic busybox: the image has no libc.
if ldd "$bb" >/dev/null 2>&1; then echo "$0: $bb is dynamically linked; install busybox-static" >&2; exit 2; fi

mkdir -p "$out"
work=$(mktemp -d "$out/img.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
	[ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
# Fixed owner and times: the same input gives the same layer digest.
tar -C "$root" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$out/rootfs.tar" .

# OCI image layout: blobs/sha256/<digest>, index.json, oci-layout.
lay=$work/oci
mkdir -p "$lay/blobs/sha256"
blob() { # blob FILE -> prints "DIGEST SIZE", stores the file as a blob
	local d s
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	cp "$1" "$lay/blobs/sha256/$d"
	echo "$d $s"
}
read -r ld ls < <(blob "$out/rootfs.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$ld" >"$work/config.json"
read -r cd cs < <(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
	"$cd" "$cs" "$ld" "$ls" >"$work/manifest.json"
read -r md ms < <(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"docker.io/hakopeers/busybox:1","org.opencontainers.image.ref.name":"1"}}]}' \
	"$md" "$ms" >"$lay/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
tar -C "$lay" --numeric-owner --owner=0 --group=0 -cf "$out/oci.tar" .
