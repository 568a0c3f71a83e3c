#!/usr/bin/env bash
# Per-command cost of an OCI runtime with runc's command line: for N cycles of
# create, start, exec, state, kill, delete on one bundle, each command's
# task-clock and page faults (perf stat, children included) and wall time;
# prints the means. Needs root and perf.
#
#   bench/runtime/cmdstat.sh RUNTIME BUNDLE [N]
#
# BUNDLE's config.json must run something that waits (e.g. sleep 100) with
# process.terminal false. Compare two builds by running it for each, twice,
# interleaved: on a loaded machine the fault counts are steadier than times.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 RUNTIME BUNDLE [N]" >&2; exit 2; }
rt=$1 bundle=$2 n=${3:-10}
work=$(mktemp -d /tmp/cmdstat.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
one() { # NAME CMD...
	local name=$1 t0 t1
	shift
	t0=$(date +%s%N)
	if ! perf stat -x, -e task-clock,page-faults -o "$work/perf" "$@" >/dev/null 2>"$work/err" </dev/null; then
		echo "$name failed:" >&2
		cat "$work/err" >&2
		exit 1
	fi
	t1=$(date +%s%N)
	awk -F, -v n="$name" -v w=$(((t1 - t0) / 1000)) \
		'/task-clock/{t=$1} /page-faults/{f=$1} END{print n, t, f, w}' "$work/perf" >>"$work/res"
}
for i in $(seq "$n"); do
	id=cmdstat$$-$i
	one create "$rt" --root "$root" create --bundle "$bundle" --pid-file "$work/pid" "$id"
	one start "$rt" --root "$root" start "$id"
	one exec "$rt" --root "$root" exec "$id" /bin/true
	one state "$rt" --root "$root" state "$id"
	one kill "$rt" --root "$root" kill "$id" KILL
	pid=$(cat "$work/pid")
	while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do sleep 0.01; done
	one delete "$rt" --root "$root" delete "$id"
done
awk '{n[$1]++; t[$1]+=$2; f[$1]+=$3; w[$1]+=$4}
	END {for (k in n) printf "%-7s task-clock %6.2f ms  page-faults %5.0f  wall %6.2f ms\n", k, t[k]/n[k], f[k]/n[k], w[k]/n[k]/1000}' \
	"$work/res" | sort
