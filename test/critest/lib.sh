#!/usr/bin/env bash
# Shared by test/critest/run.sh and bench/cri/run.sh: builds crictl and
# critest, the test images and a registry on loopback serving them, and
# starts a hakod whose per-registry hosts map the images' canonical
# registries to it. Source it with $root and $bin set; it sets $work,
# $crictl, $critest, $port, $sock and a cleanup trap.
cache=${CRITEST_CACHE:-/var/tmp/hako-critest}
version=v1.37.0
work=$(mktemp -d /tmp/hako-critest.XXXXXX)
chmod 711 "$work" # pods with a user namespace reach their rootfs as a host uid that is not root
mkdir -p "$cache/bin" "$cache/debs"
log() { echo "critest: $*" >&2; }

# 1. crictl and critest, built once (reference/critest-offline.md §1).
if [[ ! -x $cache/bin/crictl || ! -x $cache/bin/critest || $(cat "$cache/bin/version" 2>/dev/null) != "$version" ]]; then
	log "building crictl and critest $version"
	ldflags="-X sigs.k8s.io/cri-tools/pkg/version.Version=${version#v}"
	(cd "$work" && GOBIN=$cache/bin GOFLAGS=-mod=mod go install -ldflags "$ldflags" "sigs.k8s.io/cri-tools/cmd/crictl@$version")
	src=$(cd "$work" && go mod download -json "sigs.k8s.io/cri-tools@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	rm -rf "$cache/src" && cp -r "$src" "$cache/src" && chmod -R u+w "$cache/src"
	(cd "$cache/src" && go test -c -ldflags "$ldflags" -o "$cache/bin/critest" ./cmd/critest)
	echo "$version" > "$cache/bin/version"
fi
crictl=$cache/bin/crictl critest=$cache/bin/critest

# 2. Image contents: Debian's dynamic busybox (not busybox-static, whose
# shell runs applets itself, so masking /bin/ls would not bite) with the
# libraries it needs, every applet a hard link; nginx with its libraries;
# static pause and nnp.
fetch() { # fetch PACKAGE: its .deb in the cache
	local deb
	deb=$(ls "$cache/debs/$1"_*.deb 2>/dev/null | head -1 || true)
	if [[ -z $deb ]]; then
		(cd "$cache/debs" && apt-get download "$1" >/dev/null 2>&1) || { apt-get update -qq && (cd "$cache/debs" && apt-get download "$1" >/dev/null); }
		deb=$(ls "$cache/debs/$1"_*.deb | head -1)
	fi
	echo "$deb"
}
copy_libs() { # copy_libs ROOT BINARY: the binary's shared libraries into ROOT
	ldd "$2" | grep -o '/[^ ]*' | while read -r lib; do
		mkdir -p "$1$(dirname "$lib")"
		cp -L "$lib" "$1$lib"
	done
}
bb=$work/busybox
mkdir -p "$work/deb-busybox" "$bb"/{bin,etc,tmp,root,var/run,usr/bin,usr/local/bin,home,proc,sys,dev}
dpkg-deb -x "$(fetch busybox)" "$work/deb-busybox"
cp "$work/deb-busybox/bin/busybox" "$bb/bin/busybox"
copy_libs "$bb" "$bb/bin/busybox"
for a in $("$bb/bin/busybox" --list); do
	[[ $a == busybox ]] || ln -f "$bb/bin/busybox" "$bb/bin/$a"
done
install -m 755 "$root/test/critest/src/pgrep" "$root/test/critest/src/ipcs" "$bb/usr/bin/"
chmod 1777 "$bb/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$bb/etc/passwd"
printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' > "$bb/etc/group"
ng=$work/nginx
mkdir -p "$work/deb-nginx" "$ng"/{usr/sbin,etc/nginx,usr/share/nginx/html,var/log/nginx,var/lib/nginx}
dpkg-deb -x "$(fetch nginx)" "$work/deb-nginx"
cp "$work/deb-nginx/usr/sbin/nginx" "$ng/usr/sbin/nginx"
copy_libs "$ng" "$ng/usr/sbin/nginx"
dpkg-deb -x "$(fetch nginx-common)" "$work/deb-nginx-common"
cp "$work/deb-nginx-common/etc/nginx/mime.types" "$ng/etc/nginx/" 2>/dev/null || true
cp "$root/test/critest/src/nginx.conf" "$ng/etc/nginx/nginx.conf"
echo '<html><body>hako critest nginx</body></html>' > "$ng/usr/share/nginx/html/index.html"
gcc -static -O2 -o "$work/pause" "$root/test/critest/src/pause.c"
gcc -static -O2 -o "$work/nnp" "$root/test/critest/src/nnp.c"

# 3. A registry on loopback, and the images in it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
log: {level: error}
EOF
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
regpid=$!
hakodpid=
shm_before=$(awk 'NR>1 && $4==1048576 && $7==0 {print $2}' /proc/sysvipc/shm | sort)
cleanup_hooks=()
cleanup() {
	set +e
	for h in "${cleanup_hooks[@]}"; do "$h"; done
	if [[ -n $hakodpid ]]; then
		CRI_CONFIG_FILE=$work/crictl.yaml "$crictl" rmp -fa >/dev/null 2>&1
		kill "$hakodpid" 2>/dev/null && wait "$hakodpid" 2>/dev/null
		for p in "$work"/run/shims/*/shim.pid; do [[ -f $p ]] && kill -9 "$(cat "$p")" 2>/dev/null; done
	fi
	kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
	# critest's HostIpc tests leave 1 MiB segments made on the host by ipcmk.
	for id in $(comm -13 <(echo "$shm_before") <(awk 'NR>1 && $4==1048576 && $7==0 {print $2}' /proc/sysvipc/shm | sort)); do
		ipcrm -m "$id" 2>/dev/null
	done
	grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	[[ -n ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
log "building and pushing the test images to 127.0.0.1:$port"
(cd "$root" && go run ./test/critest/mkimages --registry "127.0.0.1:$port" --busybox "$bb" --nginx "$ng" --pause "$work/pause" --nnp "$work/nnp") > "$work/mkimages.log"

# 4. hakod, its CRI socket and the registry hosts (hosts.toml, as containerd).
for h in registry.k8s.io k8s.gcr.io gcr.io public.ecr.aws docker.io; do
	mkdir -p "$work/certs.d/$h"
	printf 'server = "https://%s"\n\n[host."http://127.0.0.1:%s"]\n  capabilities = ["pull", "resolve"]\n' "$h" "$port" > "$work/certs.d/$h/hosts.toml"
done
sock=$work/cri.sock
"$bin/hakod" -H "unix://$work/hako.sock" --data-root "$work/data" --exec-root "$work/run" --pidfile "$work/hakod.pid" \
	--cri-socket "$sock" --registry-config-path "$work/certs.d" --cri-sandbox-image registry.k8s.io/pause:3.6 \
	--log-level "${HAKOD_LOG_LEVEL:-info}" > "$work/hakod.log" 2>&1 &
hakodpid=$!
for _ in $(seq 200); do [[ -S $sock ]] && break; sleep 0.05; done
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n' "$sock" "$sock" > "$work/crictl.yaml"

