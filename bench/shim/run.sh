#!/usr/bin/env bash
# bench/shim/run.sh [N]: idle memory per container of hako-shim (with
# hako-runtime and with runc) and of conmon (runc), N containers each
# (default 50), in one run. Needs root. Prints PSS per container of the
# monitors and of the daemon's growth (the bench process standing in for
# hakod, with a Wait pending on every container).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-50}
[[ $(id -u) == 0 ]] || { echo "bench/shim: needs root" >&2; exit 1; }
make -s bin/hako-shim bin/hako-runtime
# The runtimes remove each container's cgroup but not the parent the
# bundles name (linux.cgroupsPath /hako-shimbench/ID): remove it when done.
trap 'rmdir /sys/fs/cgroup/hako-shimbench /sys/fs/cgroup/*/hako-shimbench 2>/dev/null || true' EXIT
go build -o bin/shimbench ./bench/shim
conmon=()
if command -v conmon >/dev/null && command -v runc >/dev/null; then
	conmon=(-conmon "$(command -v conmon)" -conmon-runtime runc)
fi
echo "== hako-shim + hako-runtime"
bin/shimbench -n "$n" -runtime bin/hako-runtime
if command -v runc >/dev/null; then
	echo
	echo "== hako-shim + runc, and conmon + runc"
	bin/shimbench -n "$n" -runtime runc "${conmon[@]}"
fi
