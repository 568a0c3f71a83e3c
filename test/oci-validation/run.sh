#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite against one OCI runtime.
#
#   test/oci-validation/run.sh RUNTIME [PROGRAM_REGEX]
#
# RUNTIME is a path or a name on $PATH (hako-runtime, runc, crun...).
# PROGRAM_REGEX limits the run to validation programs whose name matches.
#
# Environment:
#   HAKO_CACHE          where the built suite is cached (default /var/cache/hako-test)
#   HYBRID_WORKAROUND   1: run inside a private mount namespace with an empty file
#                       bind-mounted over /sys/fs/cgroup/unified/cgroup.controllers
#                       (crun 1.8 refuses hybrid cgroup hosts otherwise); 0: never.
#                       Default: 1 for crun on a hybrid host, 0 otherwise.
#   KNOWN_FAILURES      allow-list (default test/oci-validation/known-failures.txt)
#   PROGRAM_TIMEOUT     per-program timeout (default 120s)
#
# Prints PASS/FAIL per program and, as the last line, "N passed, N failed".
# Exits 0 when every failure is in the allow-list and nothing leaked, 1 when
# not, 2 when the suite could not be built or run.
set -euo pipefail

RT_MODULE=github.com/opencontainers/runtime-tools
RT_VERSION=v0.9.1-0.20241108202711-f7e3563b0271

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() { echo "usage: $0 RUNTIME [PROGRAM_REGEX]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[ "$(id -u)" = 0 ] || { echo "$0: the validation suite creates containers and needs root" >&2; exit 2; }

runtime=$1
regex=${2:-}
if [[ $runtime != */* ]]; then
	resolved=$(command -v "$runtime" || true)
	[ -n "$resolved" ] || { echo "$0: runtime $runtime not found on PATH" >&2; exit 2; }
	runtime=$resolved
fi
[ -x "$runtime" ] && [ -f "$runtime" ] || { echo "$0: runtime $runtime is not an executable file" >&2; exit 2; }
runtime=$(cd "$(dirname "$runtime")" && pwd)/$(basename "$runtime")

cache=${HAKO_CACHE:-/var/cache/hako-test}
known=${KNOWN_FAILURES:-$here/known-failures.txt}
timeout=${PROGRAM_TIMEOUT:-120s}

# is_hybrid: cgroup v1 controllers plus a cgroup2 mount whose
# cgroup.controllers is not empty (crun 1.8 gives up on such a host).
is_hybrid() {
	local f=/sys/fs/cgroup/unified/cgroup.controllers
	# (cgroupfs files report size 0, so read the content rather than test -s)
	[ -r "$f" ] && [ -n "$(tr -d '[:space:]' <"$f")" ] && [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ]
}

workaround=${HYBRID_WORKAROUND:-}
if [ -z "$workaround" ]; then
	workaround=0
	if [ "$(basename "$runtime")" = crun ] && is_hybrid; then workaround=1; fi
fi

# Re-run this script inside a private mount namespace for the workaround; the
# bind mount then vanishes with the namespace whatever happens to us.
if [ "$workaround" = 1 ] && [ -z "${_HAKO_OCIVAL_IN_NS:-}" ]; then
	export _HAKO_OCIVAL_IN_NS=1 HYBRID_WORKAROUND=1
	exec unshare --mount --propagation unchanged -- "$0" "$@"
fi
if [ "$workaround" = 1 ]; then
	if is_hybrid; then
		empty=$(mktemp)
		# Private first, so the bind mount cannot propagate to the host
		# even where the host's mounts are shared.
		mount --make-private /sys/fs/cgroup/unified
		mount --bind "$empty" /sys/fs/cgroup/unified/cgroup.controllers
		rm -f "$empty" # the mount keeps the inode
		echo "hybrid workaround: private mount namespace, empty cgroup.controllers over /sys/fs/cgroup/unified" >&2
	else
		echo "hybrid workaround requested but this host is not hybrid; nothing to do" >&2
	fi
fi

# build_suite: copy runtime-tools out of the module cache and build
# runtimetest and the validation programs, once per version and Go release.
build_suite() {
	local key dest tmp dir
	key=$RT_VERSION-$(go env GOVERSION)
	dest=$cache/runtime-tools/$key
	if [ -f "$dest/.built" ]; then
		echo "$dest"
		return
	fi
	mkdir -p "$cache/runtime-tools"
	exec 9>"$cache/runtime-tools/.lock"
	flock 9 # another run may be building the same thing
	if [ -f "$dest/.built" ]; then
		echo "$dest"
		return
	fi
	echo "building runtime-tools $RT_VERSION into $dest (once; takes about a minute)" >&2
	dir=$(cd "$cache" && go mod download -json "$RT_MODULE@$RT_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] && [ -d "$dir" ] || { echo "$0: go mod download $RT_MODULE@$RT_VERSION gave no directory" >&2; return 1; }
	tmp=$(mktemp -d "$cache/runtime-tools/.build.XXXXXX")
	cp -r "$dir/." "$tmp/"
	chmod -R u+w "$tmp"
	rm -rf "$tmp/vendor"
	(
		cd "$tmp"
		export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" GOTOOLCHAIN=local
		go mod download
		make COMMIT=$RT_VERSION runtimetest validation-executables >"$tmp/build.log" 2>&1 ||
			{ tail -20 "$tmp/build.log" >&2; exit 1; }
	) || { rm -rf "$tmp"; return 1; }
	touch "$tmp/.built"
	rm -rf "$dest"
	mv "$tmp" "$dest"
	echo "$dest"
}

suite=$(build_suite) || { echo "$0: building the validation suite failed" >&2; exit 2; }

# One validation run per host at a time: the leak check attributes every new
# suite-named cgroup and container to the program running now.
exec 8>"$cache/oci-validation.lock"
if ! flock -n 8; then
	echo "another validation run holds $cache/oci-validation.lock; waiting" >&2
	flock 8
fi

driver=$cache/ocival-driver
# The driver is ours and small; rebuild it every run so it matches the tree.
(cd "$repo" && go build -o "$driver.new" ./test/oci-validation/driver) && mv "$driver.new" "$driver" ||
	{ echo "$0: building the driver failed" >&2; exit 2; }

echo "runtime: $runtime ($("$runtime" --version 2>/dev/null | head -1 || echo 'no --version'))" >&2
set +e
"$driver" -runtime "$runtime" -suite "$suite" -run "$regex" -timeout "$timeout" -known-failures "$known"
status=$?
set -e
exit $status
