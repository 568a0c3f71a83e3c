#!/usr/bin/env bash
# hako's main job on its built-in default: hakod in the background, the
# offline default image (built from the host's busybox-static, since no
# registry is reachable), and `hako run --rm --trace` of it, which prints
# the tree of every step from the CLI's API calls down to the container's
# execve, with timings.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
[[ -x $BIN/hakod && -x $BIN/hako ]] || { echo "demo: build first (make build)" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "demo: hakod needs root" >&2; exit 1; }

SOCK=${HAKO_DEMO_SOCK:-/run/hako/hako.sock}
export HAKO_HOST=unix://$SOCK
if ! "$BIN/hako" version >/dev/null 2>&1; then
	mkdir -p /var/log
	echo "starting hakod (log: /var/log/hakod.log)"
	setsid "$BIN/hakod" -H "$HAKO_HOST" >>/var/log/hakod.log 2>&1 < /dev/null &
	for _ in $(seq 100); do
		"$BIN/hako" version >/dev/null 2>&1 && break
		sleep 0.1
	done
fi
"$BIN/hako" version --format 'hakod {{.Server.Version}} (API {{.Server.APIVersion}}) on {{.Server.Os}}/{{.Server.Arch}}'
echo
echo "\$ hako pull hako.local/busybox      # the offline default image, built from /bin/busybox"
"$BIN/hako" pull hako.local/busybox
echo
echo "\$ hako run --rm --trace hako.local/busybox echo hello"
exec "$BIN/hako" run --rm --trace hako.local/busybox echo hello
