#!/usr/bin/env bash
# Runs the CLI suite (docker CLI and hako CLI side by side) against a hakod
# of its own: a temporary socket, data root and exec root, removed after.
# `go test ./test/cli` alone runs the same suite against a dockerd it starts.
# HAKO_BIN: the directory of hako's binaries (default bin/).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${HAKO_BIN:-$PWD/bin}
T=$(mktemp -d /tmp/hako-clitest.XXXXXX)
pid=
cleanup() {
	local rc=$?
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		# The suite removes what it creates: anything left is a failure.
		ids=$(docker -H "unix://$T/hako.sock" ps -aq 2>/dev/null || true)
		if [[ -n $ids ]]; then
			echo "containers left by the suite:"
			docker -H "unix://$T/hako.sock" ps -a
			# shellcheck disable=SC2086 # one argument per id
			docker -H "unix://$T/hako.sock" rm -f $ids >/dev/null 2>&1 || true
			((rc)) || rc=1
		fi
		kill "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	# The daemon's bridges, namespaces, leases and iptables rules.
	[[ -d $T/data ]] && go run ./test/netpurge --data-root "$T/data" --exec-root "$T/run" || true
	grep -q " $T" /proc/mounts && awk -v t="$T" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
"$BIN/hakod" -H "unix://$T/hako.sock" --data-root "$T/data" --exec-root "$T/run" --pidfile "$T/hakod.pid" \
	--log-level debug >"$T/hakod.log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 100); do
	[[ -S $T/hako.sock ]] && docker -H "unix://$T/hako.sock" version >/dev/null 2>&1 && break
	sleep 0.1
done
export HAKO_TEST_DAEMON_SOCK=$T/hako.sock HAKO_TEST_BINARY=$BIN/hako
# -v for the per-scenario verdicts counted below; the output is kept and
# shown (without the RUN/PASS chatter) only when something fails.
rc=0
go test -count=1 -timeout 20m -v "$@" ./test/cli/ >"$T/suite.log" 2>&1 || rc=$?
passed=$(grep -c '^--- PASS' "$T/suite.log" || true)
failed=$(grep -c '^--- FAIL' "$T/suite.log" || true)
skipped=$(grep -c '^--- SKIP' "$T/suite.log" || true)
if ((rc)); then
	grep -Ev '^(=== (RUN|PAUSE|CONT)|\s*--- PASS)' "$T/suite.log" || true
	echo "hakod's log (last 50 lines):"
	tail -50 "$T/hakod.log"
fi
echo "test/cli against hakod (docker CLI, hako CLI, docker-compose): $passed passed, $failed failed, $skipped skipped"
exit $rc
