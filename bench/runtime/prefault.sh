#!/usr/bin/env bash
# What mapping the executable at start (runtime/nsexec/prefault.c) saves a
# short-lived command: hako-runtime's `state` of no container, run N times
# per round with and without HAKO_NOPREFAULT=1, rounds alternating; prints
# CPU (user+sys of the runs) and page faults per run. Needs perf for the
# faults; no root. (The hako CLI did the same until 2026-11-28, see
# docs/cli.md.)
#
#   bench/runtime/prefault.sh [ROUNDS] [N]      (from the repository, after make build)
set -euo pipefail
rounds=${1:-4} n=${2:-50}
bin=$(cd "$(dirname "$0")/../../bin" && pwd)
root=$(mktemp -d /tmp/prefault.XXXXXX)
trap 'rm -rf "$root"' EXIT
cmds=("$bin/hako-runtime --root $root state none")
# cpu CMD VAR: user+sys ms per run of N runs of CMD with VAR in the environment.
cpu() {
	local t
	t=$( (export "$2"; for ((i = 0; i < n; i++)); do $1 >/dev/null 2>&1 || true; done; times) | tail -1)
	awk -v t="$t" -v n="$n" 'BEGIN{split(t, a, " "); split(a[1], u, /[ms]/); split(a[2], s, /[ms]/);
		printf "%.2f", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000 / n}'
}
faults() {
	{ env "$2" perf stat -x, -r "$n" -e page-faults $1 2>&1 >/dev/null || true; } | awk -F, '/page-faults/{printf "%d", $1}'
}
for c in "${cmds[@]}"; do
	c_name=${c#"$bin"/}
	echo "${c_name//$root/TMP}:"
	for ((r = 1; r <= rounds; r++)); do
		line="  round $r"
		for v in PREFAULT=on HAKO_NOPREFAULT=1; do
			line+="  ${v/HAKO_NOPREFAULT=1/off}: $(cpu "$c" "$v") ms CPU, $(faults "$c" "$v") faults"
		done
		echo "${line//PREFAULT=on/on}"
	done
done
