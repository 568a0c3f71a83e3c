#!/usr/bin/env bash
# Compares OCI runtimes on "run /bin/true" and "create + start + delete" in
# one invocation, the runtimes interleaved iteration by iteration.
#
#   bench/runtime/run.sh [RUNTIME...]
#
# RUNTIME is NAME=PATH, a path, or a name on $PATH; the report labels it NAME
# (default: the file's base name). Without arguments: hako-runtime from
# bin/ of this checkout (skipped with a note while it is not built), runc, crun.
#
# Environment:
#   ITERATIONS          measured iterations per runtime and workload (default 50)
#   WARMUP              warm-up iterations before them (default 5)
#   BUSYBOX             static busybox for the rootfs (default /bin/busybox)
#   JSON_OUT            also write every sample to this file
#   HYBRID_WORKAROUND   1: run ALL runtimes inside one private mount namespace with
#                       an empty file over /sys/fs/cgroup/unified/cgroup.controllers
#                       (crun 1.8 refuses hybrid cgroup hosts otherwise); 0: never.
#                       Default: 1 when crun takes part on a hybrid host.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "$0: the runtimes need root to create containers" >&2; exit 2; }

is_hybrid() {
	# cgroupfs files report size 0, so read the content rather than test -s.
	local f=/sys/fs/cgroup/unified/cgroup.controllers
	[ -r "$f" ] && [ -n "$(tr -d '[:space:]' <"$f")" ] && [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ]
}

specs=()
if [ $# -eq 0 ]; then
	if [ -x "$repo/bin/hako-runtime" ]; then
		specs+=("hako-runtime=$repo/bin/hako-runtime")
	else
		echo "note: $repo/bin/hako-runtime is not built (make build); benchmarking without it" >&2
	fi
	for rt in runc crun; do
		if command -v "$rt" >/dev/null; then
			specs+=("$rt=$(command -v "$rt")")
		else
			echo "note: $rt is not installed; benchmarking without it" >&2
		fi
	done
else
	for a in "$@"; do
		if [[ $a == *=* ]]; then
			specs+=("$a")
		else
			p=$a
			[[ $p == */* ]] || p=$(command -v "$p" || true)
			[ -n "$p" ] && [ -x "$p" ] || { echo "$0: runtime $a not found or not executable" >&2; exit 2; }
			specs+=("$(basename "$p")=$p")
		fi
	done
fi
[ ${#specs[@]} -gt 0 ] || { echo "$0: no runtime to benchmark" >&2; exit 2; }

workaround=${HYBRID_WORKAROUND:-}
if [ -z "$workaround" ]; then
	workaround=0
	for s in "${specs[@]}"; do
		if [ "$(basename "${s#*=}")" = crun ] && is_hybrid; then workaround=1; fi
	done
fi

# The workaround applies to every runtime alike: the whole benchmark runs in
# the one namespace, so none pays for it and none is spared from it.
if [ "$workaround" = 1 ] && [ -z "${_HAKO_BENCH_IN_NS:-}" ]; then
	export _HAKO_BENCH_IN_NS=1 HYBRID_WORKAROUND=1
	exec unshare --mount --propagation unchanged -- "$0" "$@"
fi

cgroups=$(stat -f -c %T /sys/fs/cgroup)
if is_hybrid; then cgroups="hybrid (v1 + cgroup2 at /sys/fs/cgroup/unified)"; fi
tmp=$(mktemp -d /tmp/hako-bench-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ "$workaround" = 1 ] && is_hybrid; then
	: >"$tmp/empty"
	# Private first, so the bind mount cannot propagate to the host even
	# where the host's mounts are shared.
	mount --make-private /sys/fs/cgroup/unified
	mount --bind "$tmp/empty" /sys/fs/cgroup/unified/cgroup.controllers
	echo "hybrid workaround: all runtimes run in one private mount namespace with an empty /sys/fs/cgroup/unified/cgroup.controllers"
fi

(cd "$repo" && go build -o "$tmp/rtbench" ./bench/runtime/rtbench) || { echo "$0: building rtbench failed" >&2; exit 2; }

args=(-n "${ITERATIONS:-50}" -warmup "${WARMUP:-5}" -busybox "${BUSYBOX:-/bin/busybox}")
[ -z "${JSON_OUT:-}" ] || args+=(-json "$JSON_OUT")
echo "host: kernel $(uname -r), $(nproc) CPUs, cgroups $cgroups"
"$tmp/rtbench" "${args[@]}" "${specs[@]}"
