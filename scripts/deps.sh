#!/usr/bin/env bash
# Installs what building and testing hako needs on a fresh Debian 12 machine:
# Debian packages (compilers, libseccomp for static linking, busybox for test
# images, the peers we test against) and the Go modules. Idempotent and quiet
# when everything is there.
set -euo pipefail

pkgs=(
	gcc libc6-dev make pkg-config git jq       # build
	libseccomp-dev                             # seccomp, linked statically
	busybox-static                             # the rootfs of test and demo containers
	runc crun                                  # peers: benchmarks, cross-tests, validation baselines
	docker-registry skopeo umoci               # image tests: a registry on loopback, OCI layout cross-checks
	docker.io                                  # image tests: `docker load` of our archives by a real dockerd
	containerd podman                          # peers driving hako-runtime (test/peers)
	iptables socat hyperfine
	containernetworking-plugins                # hakod's networks: CNI plugins in /usr/lib/cni
	docker-compose                             # test/cli: a compose project against hakod and dockerd
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	export PATH=$PATH:/usr/local/go/bin
fi
cd "$(dirname "$0")/.."
go mod download
