#!/bin/bash
# A/B of two hakod builds on this machine: two hakods side by side, each
# with its own data root, exec root (a tmpfs, as /run is) and default bridge,
# and two sections:
#   par      ROUNDS rounds of PARALLEL x `hako run -d IMG sleep` at once, until
#            all have returned; old and new alternate, each round once the
#            CPUs are quiet
#   run --rm N x `hako run --rm IMG true`, with --network none and on the
#            default bridge; old and new alternate in blocks of BLOCK runs,
#            each block after one uncounted run; medians. Not run by run: a
#            build's background work after a run (hakod's spare shim, a
#            CNI DEL) would then fall on the other build's next run.
# Paired in one invocation, interleaved as finely as the operation allows:
# that is what shows a change of a few percent on a machine whose speed
# drifts by more than that within the hour (bench/engine/README.md). Each
# build uses its own CLI, shim and runtime (hakod runs the ones beside it).
#
#   sudo bench/engine/ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]
#   e.g. git worktree add /tmp/old HEAD~1 && make -C /tmp/old build
#        sudo bench/engine/ab.sh /tmp/old/bin bin 8
#
# Environment: PARALLEL (default 20), N (default 40), BLOCK (default 10),
# PAUSE (seconds before each timed run, default 0), BIP_OLD and BIP_NEW (the
# hakods' bridge addresses, default 10.252.0.1/24 and 10.253.0.1/24). Exit status 0 when every command
# succeeded, 1 when one failed, 2 for bad arguments.
set -euo pipefail

usage() { echo "usage: $0 OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]" >&2; exit 2; }
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
ROUNDS=${3:-6}
PAR=${PARALLEL:-20}
N=${N:-40}
BLOCK=${BLOCK:-10}
PAUSE=${PAUSE:-0}
[[ $ROUNDS =~ ^[0-9]+$ && $PAR =~ ^[0-9]+$ && $N =~ ^[0-9]+$ && $BLOCK =~ ^[1-9][0-9]*$ && $PAUSE =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage
[ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 2; }
for d in "$1" "$2"; do
	[ -d "$d" ] || { echo "$0: $d is not a directory" >&2; exit 2; }
done
declare -A BIN
BIN[old]=$(cd "$1" && pwd) BIN[new]=$(cd "$2" && pwd)
for v in old new; do
	for b in hakod hako hako-shim hako-runtime; do
		[ -x "${BIN[$v]}/$b" ] || { echo "$0: ${BIN[$v]}/$b missing (make build)" >&2; exit 2; }
	done
done
REPO=$(cd "$(dirname "$0")/../.." && pwd)
IMG=hako.local/busybox
T=$(mktemp -d /tmp/hako-ab.XXXXXX)
declare -A BIP=([old]=${BIP_OLD:-10.252.0.1/24} [new]=${BIP_NEW:-10.253.0.1/24})

cleanup() {
	for v in old new; do
		local R=$T/$v
		if [ -f "$R/pid" ]; then
			# shellcheck disable=SC2046 # one ID per word
			HAKO_HOST=unix://$R/h.sock "${BIN[$v]}/hako" rm -f $(HAKO_HOST=unix://$R/h.sock "${BIN[$v]}/hako" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
			kill "$(cat "$R/pid")" 2>/dev/null || true
		fi
	done
	sleep 2
	for v in old new; do
		(cd "$REPO" && go run ./test/netpurge --data-root "$T/$v/data" --exec-root "$T/$v/exec" >/dev/null 2>&1) || true
		umount -R "$T/$v/exec" 2>/dev/null || true
		umount -R "$T/$v/data" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT

# shellcheck source=bench/engine/cpus.sh
. "$(dirname "${BASH_SOURCE[0]}")/cpus.sh"

# quiet: until the CPUs are >= 90% idle over 0.2 s (at most 10 s).
quiet() {
	local k
	for ((k = 0; k < 50; k++)); do
		cpus_busy 0.2 || return 0
	done
}

ms_since() { echo $(((${EPOCHREALTIME/./} - ${1/./}) / 1000)); }

for v in old new; do
	R=$T/$v
	mkdir -p "$R/exec"
	mount -t tmpfs hako-ab "$R/exec"
	setsid "${BIN[$v]}/hakod" -H "unix://$R/h.sock" --data-root "$R/data" --exec-root "$R/exec" \
		--bip "${BIP[$v]}" --cri-socket "" -p "$R/pid" >"$R/hakod.log" 2>&1 </dev/null &
done
for v in old new; do
	export HAKO_HOST=unix://$T/$v/h.sock
	for i in $(seq 100); do "${BIN[$v]}/hako" version >/dev/null 2>&1 && break; sleep 0.1; done
	"${BIN[$v]}/hako" pull "$IMG" >/dev/null
	"${BIN[$v]}/hako" run --rm "$IMG" true
	echo "$v: ${BIN[$v]} ($("${BIN[$v]}/hakod" --version 2>/dev/null | head -1))"
done

declare -A SUM
par() { # variant: prints the round's time
	local v=$1 B=${BIN[$1]} t0 i p pids=() ms
	export HAKO_HOST=unix://$T/$v/h.sock
	quiet
	t0=$EPOCHREALTIME
	for ((i = 0; i < PAR; i++)); do
		"$B/hako" run -d --name "ab-$i" "$IMG" sleep 100000 >/dev/null </dev/null &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || { echo "$v: run -d failed" >&2; exit 1; }; done
	ms=$(ms_since "$t0")
	# shellcheck disable=SC2046 # one ID per word
	"$B/hako" rm -f $("$B/hako" ps -aq) >/dev/null
	printf '%-4s %5d ms   ' "$v" "$ms"
	SUM[$v]=$((${SUM[$v]:-0} + ms))
}

echo "par: $ROUNDS rounds of $PAR x run -d at once (ms until all returned), old and new alternating"
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then par old; par new; else par new; par old; fi
	echo
done
((ROUNDS == 0)) || echo "mean old $((SUM[old] / ROUNDS)) ms   new $((SUM[new] / ROUNDS)) ms"

# median and quartiles (ms) of the samples (µs) given as arguments
quartiles() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {printf "median %6.1f ms (p25 %6.1f, p75 %6.1f)", a[int(NR / 2) + 1] / 1000, a[int(NR / 4) + 1] / 1000, a[int(3 * NR / 4) + 1] / 1000}'; }

echo "run --rm IMG true: $N runs per build and network, in blocks of $BLOCK per build, old and new alternating, ${PAUSE}s pause before each;"
echo "  a block starts with a run that is not counted: the other build's background work falls on it"
for net in none bridge; do
	declare -a old=() new=()
	quiet
	for ((i = 0, b = 0; i < N; i += k, b++)); do
		k=$((N - i < BLOCK ? N - i : BLOCK))
		order="old new"
		((b % 2)) && order="new old"
		for v in $order; do
			export HAKO_HOST=unix://$T/$v/h.sock
			"${BIN[$v]}/hako" run --rm --network "$net" "$IMG" true
			for ((j = 0; j < k; j++)); do
				[ "$PAUSE" = 0 ] || sleep "$PAUSE"
				t0=$EPOCHREALTIME
				"${BIN[$v]}/hako" run --rm --network "$net" "$IMG" true
				us=$((${EPOCHREALTIME/./} - ${t0/./}))
				if [ "$v" = old ]; then old+=("$us"); else new+=("$us"); fi
			done
		done
	done
	((N == 0)) && continue
	printf '%-7s old %s   new %s\n' "$net" "$(quartiles "${old[@]}")" "$(quartiles "${new[@]}")"
done
