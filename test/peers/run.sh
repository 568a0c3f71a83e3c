#!/usr/bin/env bash
# Real callers drive hako-runtime: dockerd (docker CLI 28), containerd (ctr)
# and podman each run the same scenarios with hako-runtime and with runc (the
# control), each peer on its own sockets, roots and cgroup parents under one
# temp dir, all of which is stopped and removed afterwards (also on failure or
# Ctrl-C).
#
#   sudo test/peers/run.sh
#
# Environment:
#   HAKO_RUNTIME  the runtime under test (default: bin/hako-runtime of this repo)
#   RUNC          the control runtime (default: runc on PATH)
#   PEERS         which peers, in order (default: "docker containerd podman")
#   ONLY          a regex: run only scenarios whose name matches
#   LOGDIR        keep every scenario's log here (default: a new
#                 /tmp/hako-peers-logs.* dir, kept only when something failed)
#   DOCKER_RUN_EXTRA  diagnosis only: flags added to every docker run/create
#                 (e.g. "--oom-score-adj 1"); the summary says when it is set
#   TRACE_HAKO    1: call hako-runtime through test/peers/trace-runtime.sh,
#                 which logs every invocation (caller, argv) to
#                 LOGDIR/hako-calls.log
#   TMO           per-command timeout in seconds (default 60)
#
# Prints one line per scenario and runtime ("PASS docker hako run-exit-code"),
# and as the last line "N passed, N failed" over hako-runtime's scenarios; a
# hako scenario that fails with runc too is printed as such and counted in
# neither. Exits 1 when a hako scenario fails that passes with runc (or when
# the clean-up left something behind), 2 when a peer could not be set up.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "$0: needs root (sudo $0)" >&2; exit 2; }

HAKO=${HAKO_RUNTIME:-$repo/bin/hako-runtime}
RUNC=${RUNC:-$(command -v runc || true)}
PEERS=${PEERS:-docker containerd podman}
ONLY=${ONLY:-}
[ -x "$HAKO" ] || { echo "$0: $HAKO missing: run make build" >&2; exit 2; }
[ -x "$RUNC" ] || { echo "$0: runc missing: apt-get install runc" >&2; exit 2; }
HAKO=$(readlink -f "$HAKO")
RUNC=$(readlink -f "$RUNC")
for c in dockerd docker containerd ctr podman conmon script timeout iptables-save; do
	command -v "$c" >/dev/null || { echo "$0: $c missing (see docs/peers.md)" >&2; exit 2; }
done

TAG=hp$$
# Short: dockerd's containerd puts its sockets under the exec root, and a
# unix socket path has to fit in 108 bytes.
T=$(mktemp -d /tmp/hp.XXXXXX)
chmod 711 "$T"
CGP=hakopeers-$TAG # every cgroup we make is /$CGP-<peer>/... in every hierarchy
IMG=hakopeers/busybox:1
keep_logs=${LOGDIR:+1}
LOGDIR=${LOGDIR:-$(mktemp -d /tmp/hako-peers-logs.XXXXXX)}
mkdir -p "$LOGDIR"
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"

HAKO_CALL=$HAKO
if [ "${TRACE_HAKO:-0}" = 1 ]; then
	HAKO_CALL=$T/hako-runtime # the wrapper, under its real name for callers that look at it
	sed -e "s|@HAKO@|$HAKO|" -e "s|@LOG@|$LOGDIR/hako-calls.log|" "$here/trace-runtime.sh" >"$HAKO_CALL"
	chmod 755 "$HAKO_CALL"
fi

iptables_before=$(iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//')
links_before=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort)
ipfwd_before=$(cat /proc/sys/net/ipv4/ip_forward)

# ---------------------------------------------------------------- results

declare -A RES
hako_pass=0 hako_fail=0 hako_both=0 setup_failed=0
REASON=

# fail MESSAGE: records why the current scenario fails; returns 1.
fail() {
	REASON=$*
	echo "FAILED: $*"
	return 1
}

# short STRING: the start of STRING on one line, for reasons.
# (pty output carries escape sequences: printable characters only)
short() { printf '%s' "$1" | tr '\n\t' '  ' | tr -cd '[:print:]' | tr -s ' ' | cut -c1-300; }

# x CMD...: runs CMD with a timeout (TMO, default 60s), logs it; sets OUT
# (stdout and stderr) and RC. Should CMD hang, what the runtime's and the
# peers' processes were doing a second before the timeout goes to the log.
x() {
	echo "+ $*"
	local tmo=${TMO:-60} mark w
	mark=$(mktemp "$T/x.XXXXXX")
	(
		s=
		trap '[ -z "$s" ] || kill $s 2>/dev/null; exit 0' TERM
		sleep $((tmo - 1)) &
		s=$!
		wait $s
		[ -e "$mark" ] || exit 0
		echo "[hang] $tmo s timeout about to end; processes:"
		ps -eo pid,ppid,stat,wchan:24,args | grep -E "hako-runtime|runc|$T/" | grep -v -e grep -e 'ps -eo' | cut -c1-400 | sed 's/^/[hang] /'
	) </dev/null >&2 &
	w=$!
	OUT=$(timeout --foreground -k 5 "$tmo" "$@" 2>&1)
	RC=$?
	rm -f "$mark"
	kill $w 2>/dev/null
	wait $w 2>/dev/null
	printf '%s\n[rc=%s]\n' "$OUT" "$RC"
	return 0
}

# waitfor SECS CMD...: polls CMD every 0.1s until it succeeds.
waitfor() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# hostcg CTRL PID: the host path of PID's cgroup in the v1 hierarchy CTRL.
hostcg() {
	local p
	p=$(awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$2/cgroup" 2>/dev/null)
	[ -n "$p" ] && echo "/sys/fs/cgroup/$1$p"
}

# scenario PEER NAME FUNC: runs FUNC with runc, then with hako-runtime
# (RT=runc|hako, RTBIN=the binary), and prints the two results.
scenario() {
	local peer=$1 name=$2 fn=$3 rt r line
	[ -z "$ONLY" ] || [[ $name =~ $ONLY ]] || return 0
	for rt in runc hako; do
		RT=$rt
		if [ $rt = hako ]; then RTBIN=$HAKO_CALL; else RTBIN=$RUNC; fi
		PMC=(podman "${PODMAN_GLOBAL[@]}" --runtime "$RTBIN")
		REASON=
		local log=$LOGDIR/$peer-$rt-$name.log
		echo "### $peer $rt $name" >>"$log"
		if "$fn" >>"$log" 2>&1; then r=PASS; else r=FAIL; fi
		[ $r = PASS ] || [ -n "$REASON" ] || REASON="failed (see $log)"
		RES[$peer/$rt/$name]=$r
		line="$r $peer $rt $name"
		if [ $rt = runc ]; then
			[ $r = PASS ] || line+=" (control): $REASON"
		elif [ $r = PASS ]; then
			hako_pass=$((hako_pass + 1))
		elif [ "${RES[$peer/runc/$name]}" = FAIL ]; then
			hako_both=$((hako_both + 1))
			line+=" (fails with runc too): $REASON"
		else
			hako_fail=$((hako_fail + 1))
			line+=": $REASON"
		fi
		echo "$line"
	done
}

# setup_failed PEER MESSAGE: a peer that could not start; its scenarios are
# not run (nor counted).
peer_setup_failed() {
	echo "SETUP-FAILED $1: $2"
	setup_failed=1
}

# ---------------------------------------------------------------- clean-up

# pids_of_ours: processes whose command line or executable mentions our temp
# dir (daemons, shims, conmon...) or that live in one of our cgroups.
pids_of_ours() {
	local p f
	local c
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = $$ ] && continue
		c=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")
		[[ $c == *"$T/"* ]] && echo "$p"
	done
	for f in /sys/fs/cgroup/*/"$CGP"-*; do
		[ -d "$f" ] || continue
		find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
	done
}

thaw_ours() {
	local f
	for f in /sys/fs/cgroup/freezer/"$CGP"-*; do
		[ -d "$f" ] || continue
		find "$f" -name freezer.state | while read -r s; do echo THAWED >"$s" 2>/dev/null; done
	done
}

kill_pidfile() { # kill_pidfile FILE: TERM, then KILL after 20s
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	waitfor 20 sh -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null
	waitfor 5 sh -c "! kill -0 $pid"
}

# A containerd 1.6 shim listens on /run/containerd/s/<sha256 of
# "<containerd address>/<namespace>/<container id>">, whatever containerd's
# state dir, and removes it when it exits cleanly; SHIM_SOCKETS collects the
# names of ours so that a shim killed in the clean-up leaves nothing behind.
SHIM_SOCKETS=()
note_shims() { # note_shims ADDRESS NAMESPACE ID...
	local a=$1 ns=$2 id
	shift 2
	for id in "$@"; do
		SHIM_SOCKETS+=("/run/containerd/s/$(printf '%s' "$a/$ns/$id" | sha256sum | cut -d' ' -f1)")
	done
}

stop_docker() {
	[ -S "$T/docker.sock" ] || return 0
	local ids
	# shellcheck disable=SC2046
	note_shims "$DK/exec/containerd/containerd.sock" moby $(DOCKER_HOST=unix://$T/docker.sock timeout 30 docker ps -aq --no-trunc 2>/dev/null)
	ids=$(DOCKER_HOST=unix://$T/docker.sock timeout 30 docker ps -aq 2>/dev/null)
	# shellcheck disable=SC2086
	[ -z "$ids" ] || DOCKER_HOST=unix://$T/docker.sock timeout 60 docker rm -f $ids >/dev/null 2>&1
	kill_pidfile "$T/docker.pid"
}

stop_containerd() {
	[ -S "$T/ctrd.sock" ] || return 0
	local c
	# shellcheck disable=SC2046
	note_shims "$T/ctrd.sock" hakopeers $(timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers container ls -q 2>/dev/null)
	for c in $(timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers task ls -q 2>/dev/null); do
		timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers task kill -s SIGKILL "$c" >/dev/null 2>&1
	done
	sleep 0.5
	for c in $(timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers container ls -q 2>/dev/null); do
		timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers task delete -f "$c" >/dev/null 2>&1
		timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers container delete "$c" >/dev/null 2>&1
	done
	kill_pidfile "$T/ctrd.pid"
}

# podman calls the runtime without --root: its containers' state is in the
# runtimes' default roots (/run/runc, /run/hako-runtime), by container id.
PODMAN_IDS=()
stop_podman() {
	[ -d "$T/podman" ] || return 0
	local rt id
	# shellcheck disable=SC2207
	PODMAN_IDS+=($(timeout 30 podman "${PODMAN_GLOBAL[@]}" ps -aq --no-trunc 2>/dev/null))
	for rt in "$RUNC" "$HAKO_CALL"; do
		timeout 60 podman "${PODMAN_GLOBAL[@]}" --runtime "$rt" rm -af -t 0 >/dev/null 2>&1
	done
	for id in "${PODMAN_IDS[@]}"; do
		[ ! -d "/run/runc/$id" ] || timeout 20 "$RUNC" delete -f "$id" >/dev/null 2>&1
		[ ! -d "/run/hako-runtime/$id" ] || timeout 20 "$HAKO" delete -f "$id" >/dev/null 2>&1
	done
}

cleaned=
cleanup() {
	[ -z "$cleaned" ] || return 0
	cleaned=1
	set +e
	trap '' INT TERM
	stop_docker
	stop_containerd
	stop_podman
	thaw_ours
	local p pass
	for pass in TERM KILL; do
		for p in $(pids_of_ours | sort -u); do kill -$pass "$p" 2>/dev/null; done
		for _ in $(seq 50); do
			[ -n "$(pids_of_ours)" ] || break
			sleep 0.1
		done
	done
	# Mounts under our dir, deepest first.
	awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	# Our cgroups, leaves first (a cgroup with tasks cannot go; retry once).
	local d
	for _ in 1 2 3; do
		for d in /sys/fs/cgroup/*/"$CGP"-*; do
			[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
		ls -d /sys/fs/cgroup/*/"$CGP"-* >/dev/null 2>&1 || break
		sleep 1
	done
	local s
	for s in "${SHIM_SOCKETS[@]}"; do
		[ -S "$s" ] || continue
		# only when nothing listens on it any more
		grep -q " $s\$" /proc/net/unix || rm -f "$s"
	done
	leaks=
	local left
	left=$(pids_of_ours | sort -u | tr '\n' ' ')
	[ -z "$left" ] || leaks+="processes: $left; "
	left=$(awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | tr '\n' ' ')
	[ -z "$left" ] || leaks+="mounts: $left; "
	left=$(ls -d /sys/fs/cgroup/*/"$CGP"-* 2>/dev/null | tr '\n' ' ')
	[ -z "$left" ] || leaks+="cgroups: $left; "
	left=$(for s in "${SHIM_SOCKETS[@]}"; do [ ! -e "$s" ] || echo "$s"; done | tr '\n' ' ')
	[ -z "$left" ] || leaks+="shim sockets: $left; "
	left=$(for s in "${PODMAN_IDS[@]}"; do ls -d "/run/runc/$s" "/run/hako-runtime/$s" 2>/dev/null; done | tr '\n' ' ')
	[ -z "$left" ] || leaks+="runtime state of podman's containers: $left; "
	rm -rf "$T" 2>/dev/null || leaks+="temp dir $T could not be removed; "
	[ ! -e "$T" ] || leaks+="temp dir $T remains; "
	local ipt links
	ipt=$(comm -13 <(sort <<<"$iptables_before") <(iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' | sort) | grep -iE 'docker|cni|netavark|podman' | tr '\n' ' ')
	[ -z "$ipt" ] || leaks+="iptables rules: $ipt; "
	links=$(comm -13 <(echo "$links_before") <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort) | grep -E '^(docker|br-|cni|podman|veth)' | tr '\n' ' ')
	[ -z "$links" ] || leaks+="links: $links; "
	[ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$ipfwd_before" ] || leaks+="net.ipv4.ip_forward changed; "
}

on_exit() {
	local rc=$?
	cleanup
	[ -z "$leaks" ] || echo "LEAK after clean-up: $leaks" >&2
	exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- the image

echo "hako-runtime: $HAKO ($("$HAKO" --version 2>/dev/null | head -1))"
echo "runc: $RUNC ($("$RUNC" --version 2>/dev/null | head -1))"
echo "logs: $LOGDIR"
[ -z "${DOCKER_RUN_EXTRA:-}" ] || echo "DOCKER_RUN_EXTRA: '$DOCKER_RUN_EXTRA' added to every docker run (diagnosis, not docker's defaults)"
if ! "$here/mkimage.sh" "$T/image" >"$LOGDIR/mkimage.log" 2>&1; then
	echo "SETUP-FAILED image: $(tail -3 "$LOGDIR/mkimage.log")"
	exit 2
fi

# ================================================================ docker

DK=$T/docker
DRUN=()
# DOCKER_RUN_EXTRA (diagnosis only, e.g. "--oom-score-adj 1" to look past a
# failure that blocks every container) is added to every docker run.
drun_args() {
	DRUN=(--network none --runtime "$RT" --label "hakopeers=$TAG")
	# shellcheck disable=SC2206
	[ -z "${DOCKER_RUN_EXTRA:-}" ] || DRUN+=($DOCKER_RUN_EXTRA)
}

# dclean NAME: removes a scenario's container whatever state it is in.
dclean() { timeout 30 docker rm -f "$1" >/dev/null 2>&1 || true; }

# dstate NAME FORMAT
dstate() { timeout 20 docker inspect -f "$2" "$1" 2>/dev/null; }

d_run_exit_code() {
	drun_args
	x docker run --rm "${DRUN[@]}" "$IMG" sh -c 'echo out-$((6*7)); exit 7'
	[ "$RC" = 7 ] || fail "docker run --rm ... exit 7: rc=$RC, want 7: $(short "$OUT")" || return
	grep -qx 'out-42' <<<"$OUT" || fail "output lacks out-42: $(short "$OUT")" || return
	[ -z "$(docker ps -aq --filter "label=hakopeers=$TAG" --filter "ancestor=$IMG" --filter status=exited)" ] ||
		fail "--rm left an exited container" || return
}

d_run_enoent() {
	drun_args
	x docker run --rm "${DRUN[@]}" "$IMG" /no/such/binary
	[ "$RC" = 127 ] || fail "docker run of a missing binary: rc=$RC, want 127: $(short "$OUT")" || return
	grep -q '/no/such/binary.*[Nn]o such file' <<<"$OUT" || fail "error does not say '/no/such/binary: no such file': $(short "$OUT")" || return
}

d_run_not_in_path() {
	drun_args
	x docker run --rm "${DRUN[@]}" "$IMG" no-such-command
	[ "$RC" = 127 ] || fail "docker run of a command not in PATH: rc=$RC, want 127: $(short "$OUT")" || return
	grep -q 'no-such-command.*executable file not found' <<<"$OUT" || fail "error does not say 'executable file not found': $(short "$OUT")" || return
}

d_run_not_executable() {
	drun_args
	x docker run --rm "${DRUN[@]}" "$IMG" /etc/passwd
	[ "$RC" = 126 ] || fail "docker run of a file without x bit: rc=$RC, want 126: $(short "$OUT")" || return
	grep -q '/etc/passwd.*permission denied' <<<"$OUT" || fail "error does not say '/etc/passwd: permission denied': $(short "$OUT")" || return
}

d_run_it() {
	drun_args
	x sh -c "printf 'tty; echo in-\$((6*7)); exit 5\n' | script -qec 'docker run -it --rm ${DRUN[*]} $IMG sh' /dev/null"
	[ "$RC" = 5 ] || fail "docker run -it (stdin: tty; echo; exit 5): rc=$RC, want 5: $(short "$OUT")" || return
	grep -q '^/dev/pts/[0-9]' <<<"$OUT" || fail "tty inside is not a pty: $(short "$OUT")" || return
	grep -q '^in-42' <<<"$OUT" || fail "command read from stdin did not run: $(short "$OUT")" || return
}

d_run_user_env() {
	drun_args
	x docker run --rm "${DRUN[@]}" --user 65534:65534 -w /tmp -e FOO=bar-baz -h peerhost "$IMG" \
		sh -c 'echo "$(id -u) $(id -g) $(pwd) $FOO $(hostname)"'
	[ "$RC" = 0 ] || fail "rc=$RC: $(short "$OUT")" || return
	grep -qx '65534 65534 /tmp bar-baz peerhost' <<<"$OUT" ||
		fail "uid gid cwd env hostname: got '$(short "$OUT")', want '65534 65534 /tmp bar-baz peerhost'" || return
}

declare -A DPID DCG
d_run_detached() {
	drun_args
	local n=hp-$RT-detached
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" "$IMG" sh -c 'trap "exit 0" TERM; echo started; while :; do sleep 1; done'
	[ "$RC" = 0 ] || fail "docker run -d: rc=$RC: $(short "$OUT")" || return
	[ "$(dstate $n '{{.State.Running}}')" = true ] || fail "not running after run -d: $(dstate $n '{{.State.Status}} {{.State.Error}}')" || return
	DPID[$RT]=$(dstate $n '{{.State.Pid}}')
	kill -0 "${DPID[$RT]}" 2>/dev/null || fail "container pid ${DPID[$RT]} not alive on the host" || return
	DCG[$RT]=$(hostcg memory "${DPID[$RT]}")
	[[ ${DCG[$RT]} == */$CGP-docker/* ]] || fail "container not in the docker cgroup parent: ${DCG[$RT]}" || return
	waitfor 10 sh -c "docker logs $n 2>&1 | grep -q started" || fail "docker logs never showed 'started'" || return
}

d_need_detached() {
	[ "${RES[docker/$RT/run-detached]:-}" = PASS ] || fail "needs run-detached, which failed" || return
}

d_exec() {
	d_need_detached || return
	x docker exec hp-$RT-detached sh -c 'echo exec-$((6*7)) $(tr "\0" " " </proc/1/cmdline); exit 6'
	[ "$RC" = 6 ] || fail "docker exec ... exit 6: rc=$RC: $(short "$OUT")" || return
	grep -q '^exec-42 sh -c trap' <<<"$OUT" || fail "exec output / pid 1 of the container wrong: $(short "$OUT")" || return
}

d_exec_t() {
	d_need_detached || return
	x docker exec -t hp-$RT-detached tty
	[ "$RC" = 0 ] || fail "docker exec -t tty: rc=$RC: $(short "$OUT")" || return
	grep -q '^/dev/pts/[0-9]' <<<"$OUT" || fail "exec -t did not get a pty: $(short "$OUT")" || return
}

d_exec_it() {
	d_need_detached || return
	x sh -c "printf 'tty; echo in-\$((6*7)); exit 4\n' | script -qec 'docker exec -it hp-$RT-detached sh' /dev/null"
	[ "$RC" = 4 ] || fail "docker exec -it (stdin: tty; echo; exit 4): rc=$RC, want 4: $(short "$OUT")" || return
	grep -q '^/dev/pts/[0-9]' <<<"$OUT" || fail "exec -it did not get a pty: $(short "$OUT")" || return
	grep -q '^in-42' <<<"$OUT" || fail "command read from stdin did not run: $(short "$OUT")" || return
}

d_exec_noent() {
	d_need_detached || return
	x docker exec hp-$RT-detached /no/such/binary
	[ "$RC" = 126 ] || [ "$RC" = 127 ] || fail "docker exec of a missing binary: rc=$RC, want 126 or 127: $(short "$OUT")" || return
	grep -q '/no/such/binary.*[Nn]o such file' <<<"$OUT" || fail "error does not say '/no/such/binary: no such file': $(short "$OUT")" || return
}

d_stop() {
	d_need_detached || return
	local t0 ms
	t0=$(now_ms)
	x docker stop -t 10 hp-$RT-detached
	ms=$(($(now_ms) - t0))
	[ "$RC" = 0 ] || fail "docker stop: rc=$RC: $(short "$OUT")" || return
	[ "$(dstate hp-$RT-detached '{{.State.Running}} {{.State.ExitCode}}')" = "false 0" ] ||
		fail "after stop: running/exit code '$(dstate hp-$RT-detached '{{.State.Running}} {{.State.ExitCode}}')', want 'false 0' (the TERM trap exits 0)" || return
	[ $ms -lt 8000 ] || fail "stop took ${ms}ms: SIGTERM did not reach the trap, docker waited for the timeout" || return
	kill -0 "${DPID[$RT]}" 2>/dev/null && { fail "container pid ${DPID[$RT]} still alive after stop"; return; }
	return 0
}

d_rm() {
	[ "${RES[docker/$RT/stop]:-}" = PASS ] || fail "needs stop, which failed" || return
	local id
	id=$(dstate hp-$RT-detached '{{.Id}}')
	x docker rm hp-$RT-detached
	[ "$RC" = 0 ] || fail "docker rm: rc=$RC: $(short "$OUT")" || return
	dstate hp-$RT-detached '{{.Id}}' >/dev/null && { fail "container still listed after rm"; return; }
	[ ! -e "$DK/exec/runtime-$RT/moby/$id" ] || fail "runtime state dir $DK/exec/runtime-$RT/moby/$id left behind" || return
	[ ! -d "${DCG[$RT]}" ] || fail "memory cgroup ${DCG[$RT]} left behind" || return
}

d_memory() {
	drun_args
	local n=hp-$RT-memory
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" --memory 64m "$IMG" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes; exec sleep 300'
	[ "$RC" = 0 ] || fail "docker run --memory 64m: rc=$RC: $(short "$OUT")" || return
	local pid cg inside host
	pid=$(dstate $n '{{.State.Pid}}')
	cg=$(hostcg memory "$pid")
	host=$(cat "$cg/memory.limit_in_bytes" 2>&1)
	waitfor 10 sh -c "docker logs $n 2>&1 | grep -q ." 
	inside=$(docker logs $n 2>&1)
	dclean $n
	[ "$host" = 67108864 ] || fail "host $cg/memory.limit_in_bytes = '$host', want 67108864" || return
	[ "$inside" = 67108864 ] || fail "inside: /sys/fs/cgroup/memory/memory.limit_in_bytes = '$(short "$inside")', want 67108864" || return
}

d_memory_oom() {
	drun_args
	local n=hp-$RT-oom
	dclean $n
	x docker run --name $n "${DRUN[@]}" --memory 32m "$IMG" sh -c 'x=$(head -c 96m /dev/zero | tr "\0" a); echo survived'
	local st
	st=$(dstate $n '{{.State.ExitCode}} {{.State.OOMKilled}}')
	dclean $n
	[ "$RC" = 137 ] || fail "96 MiB in a 32 MiB container: rc=$RC, want 137: $(short "$OUT")" || return
	[ "$st" = "137 true" ] || fail "inspect: exit code / OOMKilled = '$st', want '137 true'" || return
}

d_cpus() {
	drun_args
	local n=hp-$RT-cpus
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" --cpus 1.5 "$IMG" sh -c 'echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); exec sleep 300'
	[ "$RC" = 0 ] || fail "docker run --cpus 1.5: rc=$RC: $(short "$OUT")" || return
	local pid cg inside host
	pid=$(dstate $n '{{.State.Pid}}')
	cg=$(hostcg cpu "$pid")
	host="$(cat "$cg/cpu.cfs_quota_us" 2>&1) $(cat "$cg/cpu.cfs_period_us" 2>&1)"
	waitfor 10 sh -c "docker logs $n 2>&1 | grep -q ."
	inside=$(docker logs $n 2>&1)
	dclean $n
	[ "$host" = "150000 100000" ] || fail "host $cg cfs quota/period = '$host', want '150000 100000'" || return
	[ "$inside" = "150000 100000" ] || fail "inside cfs quota/period = '$(short "$inside")', want '150000 100000'" || return
}

d_update() {
	drun_args
	local n=hp-$RT-update pid cg pg st
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" --cpus 1.5 --pids-limit 50 "$IMG" sleep 300
	[ "$RC" = 0 ] || fail "docker run -d --cpus 1.5: rc=$RC: $(short "$OUT")" || return
	pid=$(dstate $n '{{.State.Pid}}')
	cg=$(hostcg cpu "$pid")
	pg=$(hostcg pids "$pid")
	x docker update --cpus 0.5 --pids-limit 30 $n
	st="$(cat "$cg/cpu.cfs_quota_us" 2>&1) $(cat "$pg/pids.max" 2>&1)"
	local urc=$RC uout=$OUT
	dclean $n
	[ "$urc" = 0 ] || fail "docker update --cpus 0.5 --pids-limit 30: rc=$urc: $(short "$uout")" || return
	[ "$st" = "50000 30" ] || fail "after update: cfs_quota_us / pids.max = '$st', want '50000 30'" || return
}

d_oom_score_adj() {
	drun_args
	x docker run --rm "${DRUN[@]}" --oom-score-adj 500 "$IMG" cat /proc/self/oom_score_adj
	[ "$RC" = 0 ] || fail "docker run --oom-score-adj 500: rc=$RC: $(short "$OUT")" || return
	grep -qx 500 <<<"$OUT" || fail "oom_score_adj inside: $(short "$OUT"), want 500" || return
}

d_mounts() {
	drun_args
	local v=$T/vol-$RT
	mkdir -p "$v"
	echo from-host >"$v/f"
	x docker run --rm "${DRUN[@]}" -v "$v:/data" -v "$v:/ro:ro" --tmpfs /scratch:size=1m "$IMG" sh -c '
		cat /data/f; echo from-ctr >/data/new; echo x >/ro/y || echo ro-refused; grep " /scratch " /proc/mounts'
	[ "$RC" = 0 ] || fail "rc=$RC: $(short "$OUT")" || return
	grep -qx from-host <<<"$OUT" || fail "bind mount /data does not show the host file: $(short "$OUT")" || return
	[ "$(cat "$v/new" 2>&1)" = from-ctr ] || fail "a write to the bind mount did not reach the host: $(cat "$v/new" 2>&1)" || return
	grep -q ro-refused <<<"$OUT" && grep -q 'Read-only file system' <<<"$OUT" || fail "the :ro bind mount is writable: $(short "$OUT")" || return
	[ ! -e "$v/y" ] || fail "the :ro bind mount is writable (host sees y)" || return
	grep -q '^tmpfs /scratch tmpfs .*size=1024k' <<<"$OUT" || fail "--tmpfs /scratch:size=1m not a 1m tmpfs: $(short "$OUT")" || return
}

d_ulimit() {
	drun_args
	x docker run --rm "${DRUN[@]}" --ulimit nofile=100:200 "$IMG" sh -c 'echo $(ulimit -Sn) $(ulimit -Hn)'
	[ "$RC" = 0 ] || fail "docker run --ulimit nofile=100:200: rc=$RC: $(short "$OUT")" || return
	grep -qx '100 200' <<<"$OUT" || fail "soft/hard nofile inside: $(short "$OUT"), want '100 200'" || return
}

d_cap_add_all() {
	drun_args
	# --privileged would ask for every capability, and this machine's bounding
	# set may lack one (CAP_SYS_RESOURCE here), which no runtime can grant:
	# add them all but the ones the host lacks.
	local bnd drop='' c
	bnd=$(awk '/^CapBnd/ { print $2 }' /proc/self/status)
	for c in 24:SYS_RESOURCE 21:SYS_ADMIN 12:NET_ADMIN; do
		[ $((0x$bnd >> ${c%%:*} & 1)) = 1 ] || drop+=" --cap-drop ${c#*:}"
	done
	# shellcheck disable=SC2086
	x docker run --rm "${DRUN[@]}" --cap-add ALL $drop "$IMG" grep -E "^(CapEff|CapBnd):" /proc/self/status
	[ "$RC" = 0 ] || fail "docker run --cap-add ALL$drop: rc=$RC: $(short "$OUT")" || return
	local eff cbnd b
	eff=$(sed -n 's/CapEff:[[:space:]]*//p' <<<"$OUT")
	cbnd=$(sed -n 's/CapBnd:[[:space:]]*//p' <<<"$OUT")
	[ -n "$eff" ] && [ "$eff" = "$cbnd" ] || fail "CapEff '$eff' differs from the container's bounding set '$cbnd'" || return
	# Far beyond docker's defaults: SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE.
	for b in 21 12 19 16; do
		[ $((0x$eff >> b & 1)) = 1 ] || fail "CapEff '$eff' lacks capability bit $b" || return
	done
}

d_pid_container() {
	drun_args
	local n=hp-$RT-pidns
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" --ipc shareable "$IMG" sleep 301
	[ "$RC" = 0 ] || fail "docker run -d: rc=$RC: $(short "$OUT")" || return
	x docker run --rm "${DRUN[@]}" --pid container:$n --ipc container:$n "$IMG" sh -c 'tr "\0" " " </proc/1/cmdline; echo; readlink /proc/1/ns/ipc; readlink /proc/self/ns/ipc'
	local rrc=$RC rout=$OUT
	dclean $n
	[ "$rrc" = 0 ] || fail "docker run --pid container:X --ipc container:X: rc=$rrc: $(short "$rout")" || return
	grep -q '^sleep 301' <<<"$rout" || fail "pid 1 is not the other container's sleep: $(short "$rout")" || return
	[ "$(grep -c '^ipc:' <<<"$rout")" = 2 ] && [ "$(grep '^ipc:' <<<"$rout" | sort -u | wc -l)" = 1 ] || fail "ipc namespace not shared: $(short "$rout")" || return
}

d_restart() {
	drun_args
	local n=hp-$RT-restart p1 p2 st
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" "$IMG" sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
	[ "$RC" = 0 ] || fail "docker run -d: rc=$RC: $(short "$OUT")" || return
	p1=$(dstate $n '{{.State.Pid}}')
	x docker restart -t 10 $n
	local rrc=$RC rout=$OUT
	p2=$(dstate $n '{{.State.Pid}}')
	st=$(dstate $n '{{.State.Running}}')
	dclean $n
	[ "$rrc" = 0 ] || fail "docker restart: rc=$rrc: $(short "$rout")" || return
	[ "$st" = true ] && [ -n "$p2" ] && [ "$p2" != 0 ] && [ "$p2" != "$p1" ] || fail "after restart: running=$st pid $p1 -> $p2" || return
}

d_exec_user_env() {
	d_need_detached || return
	x docker exec -u 65534 -w /tmp -e XV=ex-val hp-$RT-detached sh -c 'echo "$(id -u) $(pwd) $XV"'
	[ "$RC" = 0 ] || fail "docker exec -u -w -e: rc=$RC: $(short "$OUT")" || return
	grep -qx '65534 /tmp ex-val' <<<"$OUT" || fail "exec uid/cwd/env: '$(short "$OUT")', want '65534 /tmp ex-val'" || return
}

d_pids_limit() {
	drun_args
	# A bounded fork bomb (200 sleeps at most, so a missing limit cannot hurt
	# the host): forks must start failing at the limit. Only shell builtins
	# after it, since no fork is left.
	x docker run --rm "${DRUN[@]}" --pids-limit 20 "$IMG" sh -c '
		( i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done ) 2>/tmp/err
		read cur </sys/fs/cgroup/pids/pids.current; read max </sys/fs/cgroup/pids/pids.max
		read e </tmp/err; echo "max=$max cur=$cur err=$e"'
	[ "$RC" = 0 ] || fail "rc=$RC: $(short "$OUT")" || return
	local max cur
	max=$(sed -n 's/.*max=\([^ ]*\).*/\1/p' <<<"$OUT")
	cur=$(sed -n 's/.*cur=\([^ ]*\).*/\1/p' <<<"$OUT")
	[ "$max" = 20 ] || fail "pids.max inside = '$max', want 20: $(short "$OUT")" || return
	[ -n "$cur" ] && [ "$cur" -le 20 ] || fail "pids.current = '$cur', above the limit" || return
	grep -q "can't fork" <<<"$OUT" || fail "the fork bomb never hit the limit: $(short "$OUT")" || return
}

d_cap_drop() {
	drun_args
	local script='touch /tmp/f && chown 65534 /tmp/f && echo chown-ok; grep CapEff /proc/self/status'
	x docker run --rm "${DRUN[@]}" "$IMG" sh -c "$script"
	grep -q chown-ok <<<"$OUT" || fail "chown fails even with the default capabilities: $(short "$OUT")" || return
	x docker run --rm "${DRUN[@]}" --cap-drop CHOWN "$IMG" sh -c "$script"
	grep -q chown-ok <<<"$OUT" && { fail "chown still works with --cap-drop CHOWN: $(short "$OUT")"; return; }
	grep -q 'Operation not permitted' <<<"$OUT" || fail "chown did not fail with EPERM: $(short "$OUT")" || return
	local eff
	eff=$(sed -n 's/CapEff:[[:space:]]*//p' <<<"$OUT")
	[ -n "$eff" ] && [ $((0x$eff & 1)) = 0 ] || fail "CapEff '$eff' still has CAP_CHOWN" || return
}

d_no_new_privs() {
	drun_args
	x docker run --rm "${DRUN[@]}" "$IMG" grep NoNewPrivs /proc/self/status
	grep -q 'NoNewPrivs:[[:space:]]*0' <<<"$OUT" || fail "default NoNewPrivs not 0: $(short "$OUT")" || return
	x docker run --rm "${DRUN[@]}" --security-opt no-new-privileges "$IMG" grep NoNewPrivs /proc/self/status
	[ "$RC" = 0 ] || fail "rc=$RC: $(short "$OUT")" || return
	grep -q 'NoNewPrivs:[[:space:]]*1' <<<"$OUT" || fail "with no-new-privileges: $(short "$OUT"), want NoNewPrivs: 1" || return
}

d_seccomp_default() {
	drun_args
	x docker run --rm "${DRUN[@]}" "$IMG" sh -c 'grep "^Seccomp:" /proc/self/status; unshare -U true && echo unshare-ok'
	grep -q 'Seccomp:[[:space:]]*2' <<<"$OUT" || fail "no seccomp filter under docker's default profile: $(short "$OUT")" || return
	grep -q unshare-ok <<<"$OUT" && { fail "unshare -U succeeded under the default profile"; return; }
	grep -q 'Operation not permitted' <<<"$OUT" || fail "unshare -U did not fail with EPERM: $(short "$OUT")" || return
}

d_seccomp_unconfined() {
	drun_args
	x docker run --rm "${DRUN[@]}" --security-opt seccomp=unconfined "$IMG" sh -c 'grep "^Seccomp:" /proc/self/status; unshare -U true && echo unshare-ok'
	grep -q 'Seccomp:[[:space:]]*0' <<<"$OUT" || fail "a seccomp filter under seccomp=unconfined: $(short "$OUT")" || return
	grep -q unshare-ok <<<"$OUT" || fail "unshare -U fails under seccomp=unconfined: $(short "$OUT")" || return
}

d_read_only() {
	drun_args
	x docker run --rm "${DRUN[@]}" --read-only "$IMG" sh -c 'touch /x && echo root-writable; touch /dev/shm/x && echo shm-writable; grep " / " /proc/mounts'
	grep -q root-writable <<<"$OUT" && { fail "/ is writable with --read-only"; return; }
	grep -q 'Read-only file system' <<<"$OUT" || fail "touch / did not fail with EROFS: $(short "$OUT")" || return
	grep -q shm-writable <<<"$OUT" || fail "/dev/shm not writable: $(short "$OUT")" || return
	grep -qE '^[^ ]+ / [^ ]+ ro[, ]' <<<"$OUT" || fail "/ not mounted ro: $(short "$OUT")" || return
}

# PROC_SYS_SCRIPT prints the mounts the runtime makes of the spec's
# readonlyPaths and of /sys/fs/cgroup, and whether two masked paths read as
# empty (on the host both have content).
PROC_SYS_SCRIPT='grep -E " /(proc/(bus|fs|irq|sys|sysrq-trigger)|sys/fs/cgroup(/[^ ]*)?) " /proc/mounts
echo timer_list=$(wc -c </proc/timer_list) firmware=$(ls /sys/firmware | wc -l)'

# check_proc_sys_mounts: judges PROC_SYS_SCRIPT's output in OUT: the
# read-only paths are ro, and every mount under /proc and /sys keeps
# nosuid, nodev and noexec (as runc leaves them).
check_proc_sys_mounts() {
	[ "$RC" = 0 ] || fail "rc=$RC: $(short "$OUT")" || return
	local p l bad='' ro="/proc/bus /proc/fs /proc/irq /proc/sys"
	[ ! -e /proc/sysrq-trigger ] || ro+=" /proc/sysrq-trigger"
	for p in $ro; do
		l=$(awk -v p="$p" '$2 == p' <<<"$OUT" | tail -1)
		[ -n "$l" ] || { bad+="$p not mounted; "; continue; }
		[[ " ${l//,/ } " == *" ro "* ]] || bad+="$p not ro ($l); "
	done
	while read -r l; do
		[ -n "$l" ] || continue
		for p in nosuid nodev noexec; do
			[[ " $(awk '{ print $4 }' <<<"$l" | tr , ' ') " == *" $p "* ]] || bad+="$(awk '{ print $2, $4 }' <<<"$l") lacks $p; "
		done
	done < <(grep -E '^[^ ]+ /(proc|sys)/' <<<"$OUT")
	grep -q 'timer_list=0 firmware=0' <<<"$OUT" || bad+="masked paths readable: $(grep timer_list= <<<"$OUT"); "
	[ -z "$bad" ] || fail "$bad" || return
}

d_proc_sys_mounts() {
	drun_args
	x docker run --rm "${DRUN[@]}" "$IMG" sh -c "$PROC_SYS_SCRIPT"
	check_proc_sys_mounts
}

d_stop_timeout() {
	drun_args
	local n=hp-$RT-stopkill t0 ms
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" "$IMG" sh -c 'trap "" TERM; while :; do sleep 1; done'
	[ "$RC" = 0 ] || fail "docker run -d: rc=$RC: $(short "$OUT")" || return
	t0=$(now_ms)
	x docker stop -t 2 $n
	ms=$(($(now_ms) - t0))
	local st
	st=$(dstate $n '{{.State.Running}} {{.State.ExitCode}}')
	dclean $n
	[ "$RC" = 0 ] || fail "docker stop -t 2: rc=$RC: $(short "$OUT")" || return
	[ "$st" = "false 137" ] || fail "after stop of a TERM-ignoring container: '$st', want 'false 137' (SIGKILL)" || return
	[ $ms -ge 1900 ] || fail "stop took ${ms}ms: it did not wait the 2s timeout before SIGKILL" || return
	[ $ms -lt 15000 ] || fail "stop took ${ms}ms" || return
}

d_kill_signal() {
	drun_args
	local n=hp-$RT-kill
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" "$IMG" sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.2; done'
	[ "$RC" = 0 ] || fail "docker run -d: rc=$RC: $(short "$OUT")" || return
	waitfor 10 sh -c "docker logs $n 2>&1 | grep -q ready" || { fail "never ready"; dclean $n; return 1; }
	x docker kill -s USR1 $n
	[ "$RC" = 0 ] || { fail "docker kill -s USR1: rc=$RC: $(short "$OUT")"; dclean $n; return 1; }
	waitfor 10 sh -c "docker logs $n 2>&1 | grep -q got-usr1" || { fail "USR1 never reached the container's trap"; dclean $n; return 1; }
	[ "$(dstate $n '{{.State.Running}}')" = true ] || { fail "container died of USR1"; dclean $n; return 1; }
	x docker kill $n
	[ "$RC" = 0 ] || { fail "docker kill: rc=$RC: $(short "$OUT")"; dclean $n; return 1; }
	waitfor 10 sh -c "[ \"\$(docker inspect -f '{{.State.Running}}' $n)\" = false ]"
	local st
	st=$(dstate $n '{{.State.Running}} {{.State.ExitCode}}')
	dclean $n
	[ "$st" = "false 137" ] || fail "after docker kill: '$st', want 'false 137'" || return
}

d_pause_unpause() {
	drun_args
	local n=hp-$RT-pause
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" "$IMG" sh -c 'while :; do echo tick; sleep 0.1; done'
	[ "$RC" = 0 ] || fail "docker run -d: rc=$RC: $(short "$OUT")" || return
	local pid fz n1 n2 n3 st
	pid=$(dstate $n '{{.State.Pid}}')
	fz=$(hostcg freezer "$pid")/freezer.state
	waitfor 10 sh -c "docker logs $n 2>&1 | grep -q tick"
	x docker pause $n
	[ "$RC" = 0 ] || { fail "docker pause: rc=$RC: $(short "$OUT")"; dclean $n; return 1; }
	st="$(dstate $n '{{.State.Status}}') $(cat "$fz" 2>&1)"
	sleep 0.3
	n1=$(docker logs $n 2>&1 | wc -l)
	sleep 1
	n2=$(docker logs $n 2>&1 | wc -l)
	x docker unpause $n
	local urc=$RC ust
	ust="$(dstate $n '{{.State.Status}}') $(cat "$fz" 2>&1)"
	sleep 1
	n3=$(docker logs $n 2>&1 | wc -l)
	dclean $n
	[ "$st" = "paused FROZEN" ] || fail "after pause: status/freezer '$st', want 'paused FROZEN'" || return
	[ "$n1" = "$n2" ] || fail "the container kept writing while paused ($n1 -> $n2 lines)" || return
	[ "$urc" = 0 ] || fail "docker unpause: rc=$urc" || return
	[ "$ust" = "running THAWED" ] || fail "after unpause: status/freezer '$ust', want 'running THAWED'" || return
	[ "$n3" -gt "$n2" ] || fail "no output after unpause ($n2 -> $n3 lines)" || return
}

d_logs() {
	drun_args
	local n=hp-$RT-logs o e
	dclean $n
	x docker run --name $n "${DRUN[@]}" "$IMG" sh -c 'echo to-out; echo to-err >&2; echo to-out-2'
	o=$(docker logs $n 2>/dev/null | tr '\n' ' ')
	e=$(docker logs $n 2>&1 >/dev/null | tr '\n' ' ')
	dclean $n
	[ "$RC" = 0 ] || fail "rc=$RC: $(short "$OUT")" || return
	[ "$o" = "to-out to-out-2 " ] || fail "docker logs stdout '$o', want 'to-out to-out-2'" || return
	[ "$e" = "to-err " ] || fail "docker logs stderr '$e', want 'to-err'" || return
}

d_rm_force() {
	drun_args
	local n=hp-$RT-rmf pid id cg
	dclean $n
	x docker run -d --name $n "${DRUN[@]}" "$IMG" sleep 300
	[ "$RC" = 0 ] || fail "docker run -d: rc=$RC: $(short "$OUT")" || return
	pid=$(dstate $n '{{.State.Pid}}')
	id=$(dstate $n '{{.Id}}')
	cg=$(hostcg pids "$pid")
	x docker rm -f $n
	[ "$RC" = 0 ] || fail "docker rm -f: rc=$RC: $(short "$OUT")" || return
	dstate $n '{{.Id}}' >/dev/null && { fail "container still listed after rm -f"; return; }
	! kill -0 "$pid" 2>/dev/null || fail "container process $pid alive after rm -f" || return
	[ ! -e "$DK/exec/runtime-$RT/moby/$id" ] || fail "runtime state dir left behind: $(ls "$DK/exec/runtime-$RT/moby/$id")" || return
	[ ! -d "$cg" ] || fail "pids cgroup $cg left behind" || return
}

run_docker() {
	mkdir -p "$DK" "$T/docker-cli"
	echo '{}' >"$DK/daemon.json"
	export DOCKER_HOST=unix://$T/docker.sock DOCKER_CONFIG=$T/docker-cli
	# setsid: a Ctrl-C reaches this script, whose clean-up then stops the
	# daemons in order, not the daemons themselves.
	setsid dockerd --config-file "$DK/daemon.json" --data-root "$DK/data" --exec-root "$DK/exec" \
		-H "unix://$T/docker.sock" --pidfile "$T/docker.pid" \
		--bridge=none --iptables=false --ip-forward=false --ip-masq=false --userland-proxy=false \
		--cgroup-parent "/$CGP-docker" --exec-opt native.cgroupdriver=cgroupfs \
		--add-runtime "hako=$HAKO_CALL" >"$LOGDIR/dockerd.log" 2>&1 &
	if ! waitfor 60 docker version; then
		peer_setup_failed docker "dockerd did not come up: $(tail -3 "$LOGDIR/dockerd.log")"
		return
	fi
	if ! docker import -c 'CMD ["/bin/sh"]' "$T/image/rootfs.tar" "$IMG" >"$LOGDIR/docker-import.log" 2>&1; then
		peer_setup_failed docker "docker import: $(cat "$LOGDIR/docker-import.log")"
		return
	fi
	scenario docker run-exit-code d_run_exit_code
	scenario docker run-enoent d_run_enoent
	scenario docker run-not-in-path d_run_not_in_path
	scenario docker run-not-executable d_run_not_executable
	scenario docker run-it d_run_it
	scenario docker run-user-env d_run_user_env
	scenario docker run-detached d_run_detached
	scenario docker exec d_exec
	scenario docker exec-t d_exec_t
	scenario docker exec-it d_exec_it
	scenario docker exec-enoent d_exec_noent
	scenario docker exec-user-env d_exec_user_env
	scenario docker stop d_stop
	scenario docker rm d_rm
	scenario docker memory d_memory
	scenario docker memory-oom d_memory_oom
	scenario docker cpus d_cpus
	scenario docker pids-limit d_pids_limit
	scenario docker cap-drop d_cap_drop
	scenario docker no-new-privileges d_no_new_privs
	scenario docker seccomp-default d_seccomp_default
	scenario docker seccomp-unconfined d_seccomp_unconfined
	scenario docker read-only d_read_only
	scenario docker proc-sys-mounts d_proc_sys_mounts
	scenario docker stop-timeout d_stop_timeout
	scenario docker kill-signal d_kill_signal
	scenario docker pause-unpause d_pause_unpause
	scenario docker logs d_logs
	scenario docker rm-force d_rm_force
	scenario docker update d_update
	scenario docker oom-score-adj d_oom_score_adj
	scenario docker mounts d_mounts
	scenario docker ulimit d_ulimit
	scenario docker cap-add-all d_cap_add_all
	scenario docker pid-ipc-container d_pid_container
	scenario docker restart d_restart
	stop_docker
	unset DOCKER_HOST DOCKER_CONFIG
}

# ================================================================ containerd

CT=$T/ctrd
CR=(ctr --address "$T/ctrd.sock" -n hakopeers)
cr() { "${CR[@]}" "$@"; }
CIMG=docker.io/hakopeers/busybox:1
# crun_args ID: ctr run's flags for the current runtime.
CRUN=()
crun_args() { CRUN=(--runc-binary "$RTBIN" --runc-root "$CT/runtime-$RT" --cgroup "/$CGP-containerd/$1"); }
cclean() { # cclean ID
	timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers task kill -s SIGKILL "$1" >/dev/null 2>&1
	timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers task delete -f "$1" >/dev/null 2>&1
	timeout 20 ctr --address "$T/ctrd.sock" -n hakopeers container delete "$1" >/dev/null 2>&1
	return 0
}
# ctask ID: the task's status (RUNNING, STOPPED...)
ctask() { cr task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
ctaskpid() { cr task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }

c_run_exit_code() {
	local id=hp-$RT-exit
	cclean $id
	crun_args $id
	x "${CR[@]}" run --rm "${CRUN[@]}" $CIMG $id sh -c 'echo out-$((6*7)); exit 7'
	[ "$RC" = 7 ] || fail "ctr run --rm ... exit 7: rc=$RC, want 7: $(short "$OUT")" || return
	grep -qx 'out-42' <<<"$OUT" || fail "output lacks out-42: $(short "$OUT")" || return
	cr container info $id >/dev/null 2>&1 && { fail "--rm left the container"; return; }
	[ ! -e "$CT/runtime-$RT/hakopeers/$id" ] || fail "runtime state dir $CT/runtime-$RT/hakopeers/$id left behind" || return
}

c_run_tty() {
	local id=hp-$RT-tty
	cclean $id
	crun_args $id
	x sh -c "printf 'tty; echo in-\$((6*7)); exit 5\n' | script -qec 'ctr --address $T/ctrd.sock -n hakopeers run --rm -t ${CRUN[*]} $CIMG $id sh' /dev/null"
	[ "$RC" = 5 ] || fail "ctr run -t (stdin: tty; echo; exit 5): rc=$RC, want 5: $(short "$OUT")" || return
	grep -q '^/dev/pts/[0-9]' <<<"$OUT" || fail "tty inside is not a pty: $(short "$OUT")" || return
	grep -q '^in-42' <<<"$OUT" || fail "command read from stdin did not run: $(short "$OUT")" || return
}

declare -A CPID
c_run_detached() {
	local id=hp-$RT-d
	cclean $id
	crun_args $id
	x "${CR[@]}" run -d "${CRUN[@]}" $CIMG $id sh -c 'trap "exit 3" TERM; while :; do sleep 0.2; done'
	[ "$RC" = 0 ] || fail "ctr run -d: rc=$RC: $(short "$OUT")" || return
	[ "$(ctask $id)" = RUNNING ] || fail "task status '$(ctask $id)', want RUNNING" || return
	CPID[$RT]=$(ctaskpid $id)
	kill -0 "${CPID[$RT]}" 2>/dev/null || fail "task pid '${CPID[$RT]}' not alive on the host" || return
	[ "$(hostcg pids "${CPID[$RT]}")" = "/sys/fs/cgroup/pids/$CGP-containerd/$id" ] ||
		fail "task not in its cgroup: '$(hostcg pids "${CPID[$RT]}")'" || return
}

c_need_detached() {
	[ "${RES[containerd/$RT/run-detached]:-}" = PASS ] || fail "needs run-detached, which failed" || return
}

c_exec() {
	c_need_detached || return
	x "${CR[@]}" task exec --exec-id e1 hp-$RT-d sh -c 'echo exec-$((6*7)) $(tr "\0" " " </proc/1/cmdline); exit 6'
	[ "$RC" = 6 ] || fail "ctr task exec ... exit 6: rc=$RC, want 6: $(short "$OUT")" || return
	grep -q '^exec-42 sh -c trap' <<<"$OUT" || fail "exec output / pid 1 of the container wrong: $(short "$OUT")" || return
}

c_exec_tty() {
	c_need_detached || return
	x sh -c "printf 'tty; echo in-\$((6*7)); exit 4\n' | script -qec 'ctr --address $T/ctrd.sock -n hakopeers task exec -t --exec-id e2 hp-$RT-d sh' /dev/null"
	[ "$RC" = 4 ] || fail "ctr task exec -t (stdin: tty; echo; exit 4): rc=$RC, want 4: $(short "$OUT")" || return
	grep -q '^/dev/pts/[0-9]' <<<"$OUT" || fail "exec -t did not get a pty: $(short "$OUT")" || return
	grep -q '^in-42' <<<"$OUT" || fail "command read from stdin did not run: $(short "$OUT")" || return
}

c_task_kill() {
	c_need_detached || return
	x "${CR[@]}" task kill -s SIGTERM hp-$RT-d
	[ "$RC" = 0 ] || fail "ctr task kill -s SIGTERM: rc=$RC: $(short "$OUT")" || return
	waitfor 10 sh -c "[ \"\$(ctr --address $T/ctrd.sock -n hakopeers task ls | awk '\$1 == \"hp-$RT-d\" { print \$3 }')\" = STOPPED ]" ||
		fail "task status '$(ctask hp-$RT-d)' 10s after SIGTERM, want STOPPED" || return
	! kill -0 "${CPID[$RT]}" 2>/dev/null || fail "task pid ${CPID[$RT]} alive after SIGTERM" || return
}

c_task_delete() {
	[ "${RES[containerd/$RT/task-kill]:-}" = PASS ] || fail "needs task-kill, which failed" || return
	local id=hp-$RT-d
	x "${CR[@]}" task delete $id
	# ctr 1.6 reports the task's exit status (the TERM trap's 3) as a warning.
	[ "$RC" = 0 ] || fail "ctr task delete: rc=$RC: $(short "$OUT")" || return
	grep -q 'exit code 3"' <<<"$OUT" || fail "ctr task delete does not report exit code 3: $(short "$OUT")" || return
	[ -z "$(ctask $id)" ] || fail "task still listed after delete" || return
	[ ! -e "$CT/runtime-$RT/hakopeers/$id" ] || fail "runtime state dir $CT/runtime-$RT/hakopeers/$id left behind" || return
	[ ! -d "/sys/fs/cgroup/pids/$CGP-containerd/$id" ] || fail "cgroup /sys/fs/cgroup/pids/$CGP-containerd/$id left behind" || return
	x "${CR[@]}" container delete $id
	[ "$RC" = 0 ] || fail "ctr container delete: rc=$RC: $(short "$OUT")" || return
}

c_kill_9() {
	local id=hp-$RT-k9
	cclean $id
	crun_args $id
	x "${CR[@]}" run -d "${CRUN[@]}" $CIMG $id sh -c 'trap "" TERM; while :; do sleep 0.2; done'
	[ "$RC" = 0 ] || fail "ctr run -d: rc=$RC: $(short "$OUT")" || return
	x "${CR[@]}" task kill -s SIGKILL $id
	[ "$RC" = 0 ] || { fail "ctr task kill -s SIGKILL: rc=$RC: $(short "$OUT")"; cclean $id; return 1; }
	waitfor 10 sh -c "[ \"\$(ctr --address $T/ctrd.sock -n hakopeers task ls | awk '\$1 == \"$id\" { print \$3 }')\" = STOPPED ]" ||
		{ fail "task status '$(ctask $id)' 10s after SIGKILL, want STOPPED"; cclean $id; return 1; }
	x "${CR[@]}" task delete $id
	local drc=$RC dout=$OUT
	cclean $id
	[ "$drc" = 0 ] || fail "ctr task delete: rc=$drc: $(short "$dout")" || return
	grep -q 'exit code 137"' <<<"$dout" || fail "ctr task delete does not report exit code 137 (SIGKILL): $(short "$dout")" || return
}

c_proc_sys_mounts() {
	local id=hp-$RT-mounts
	cclean $id
	crun_args $id
	x "${CR[@]}" run --rm "${CRUN[@]}" $CIMG $id sh -c "$PROC_SYS_SCRIPT"
	check_proc_sys_mounts
}

c_task_pause() {
	local id=hp-$RT-p
	cclean $id
	crun_args $id
	x "${CR[@]}" run -d "${CRUN[@]}" $CIMG $id sleep 300
	[ "$RC" = 0 ] || fail "ctr run -d: rc=$RC: $(short "$OUT")" || return
	local fz=/sys/fs/cgroup/freezer/$CGP-containerd/$id/freezer.state st1 st2
	x "${CR[@]}" task pause $id
	local prc=$RC
	st1="$(ctask $id) $(cat $fz 2>&1)"
	x "${CR[@]}" task resume $id
	local rrc=$RC
	st2="$(ctask $id) $(cat $fz 2>&1)"
	cclean $id
	[ "$prc" = 0 ] || fail "ctr task pause: rc=$prc" || return
	[ "$st1" = "PAUSED FROZEN" ] || fail "after pause: '$st1', want 'PAUSED FROZEN'" || return
	[ "$rrc" = 0 ] || fail "ctr task resume: rc=$rrc" || return
	[ "$st2" = "RUNNING THAWED" ] || fail "after resume: '$st2', want 'RUNNING THAWED'" || return
}

run_containerd() {
	mkdir -p "$CT"
	cat >"$CT/config.toml" <<EOF
version = 2
root = "$CT/root"
state = "$CT/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$T/ctrd.sock"
[ttrpc]
  address = "$T/ctrd.sock.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CT/opt"
EOF
	setsid containerd --config "$CT/config.toml" >"$LOGDIR/containerd.log" 2>&1 &
	echo $! >"$T/ctrd.pid"
	if ! waitfor 30 cr version; then
		peer_setup_failed containerd "containerd did not come up: $(tail -3 "$LOGDIR/containerd.log")"
		return
	fi
	if ! cr image import "$T/image/oci.tar" >"$LOGDIR/ctr-import.log" 2>&1 || ! cr image ls -q | grep -qx "$CIMG"; then
		peer_setup_failed containerd "ctr image import: $(cat "$LOGDIR/ctr-import.log")"
		return
	fi
	scenario containerd run-exit-code c_run_exit_code
	scenario containerd run-tty c_run_tty
	scenario containerd run-detached c_run_detached
	scenario containerd task-exec c_exec
	scenario containerd task-exec-tty c_exec_tty
	scenario containerd task-kill c_task_kill
	scenario containerd task-delete c_task_delete
	scenario containerd task-kill-9 c_kill_9
	scenario containerd task-pause c_task_pause
	scenario containerd proc-sys-mounts c_proc_sys_mounts
	stop_containerd
}

# ================================================================ podman

PM=$T/podman
PODMAN_GLOBAL=(--root "$PM/root" --runroot "$PM/run" --tmpdir "$PM/tmp" --cgroup-manager cgroupfs
	--events-backend file --storage-driver overlay --network-config-dir "$PM/net" --conmon /usr/bin/conmon)
PMC=() # podman with its global flags and --runtime for the current runtime (set by scenario)
PIMG=localhost/hakopeers/busybox:1
PRUN=()
prun_args() { PRUN=(--network none --cgroup-parent "/$CGP-podman" --label "hakopeers=$TAG"); }
pclean() { timeout 30 podman "${PODMAN_GLOBAL[@]}" --runtime "$RTBIN" rm -f -t 0 "$1" >/dev/null 2>&1 || true; }
pstate() { timeout 20 podman "${PODMAN_GLOBAL[@]}" --runtime "$RTBIN" inspect -f "$2" "$1" 2>/dev/null; }

p_run_exit_code() {
	prun_args
	x "${PMC[@]}" run --rm "${PRUN[@]}" $PIMG sh -c 'echo out-$((6*7)); exit 7'
	[ "$RC" = 7 ] || fail "podman run --rm ... exit 7: rc=$RC, want 7: $(short "$OUT")" || return
	grep -qx 'out-42' <<<"$OUT" || fail "output lacks out-42: $(short "$OUT")" || return
}

p_run_enoent() {
	prun_args
	x "${PMC[@]}" run --rm "${PRUN[@]}" $PIMG /no/such/binary
	[ "$RC" = 127 ] || fail "podman run of a missing binary: rc=$RC, want 127: $(short "$OUT")" || return
	grep -q '/no/such/binary' <<<"$OUT" || fail "error does not name /no/such/binary: $(short "$OUT")" || return
}

p_run_it() {
	prun_args
	x sh -c "printf 'tty; echo in-\$((6*7)); exit 5\n' | script -qec 'podman ${PODMAN_GLOBAL[*]} --runtime $RTBIN run -it --rm ${PRUN[*]} $PIMG sh' /dev/null"
	[ "$RC" = 5 ] || fail "podman run -it (stdin: tty; echo; exit 5): rc=$RC, want 5: $(short "$OUT")" || return
	grep -q '^/dev/pts/[0-9]' <<<"$OUT" || fail "tty inside is not a pty: $(short "$OUT")" || return
	grep -q '^in-42' <<<"$OUT" || fail "command read from stdin did not run: $(short "$OUT")" || return
}

declare -A PPID_
p_run_detached() {
	prun_args
	local n=hp-$RT-d
	pclean $n
	x "${PMC[@]}" run -d --name $n "${PRUN[@]}" $PIMG sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
	[ "$RC" = 0 ] || fail "podman run -d: rc=$RC: $(short "$OUT")" || return
	[ "$(pstate $n '{{.State.Running}}')" = true ] || fail "not running after run -d: $(pstate $n '{{.State.Status}} {{.State.Error}}')" || return
	PPID_[$RT]=$(pstate $n '{{.State.Pid}}')
	kill -0 "${PPID_[$RT]}" 2>/dev/null || fail "container pid '${PPID_[$RT]}' not alive on the host" || return
	[[ $(hostcg pids "${PPID_[$RT]}") == */$CGP-podman/* ]] || fail "container not in the podman cgroup parent: $(hostcg pids "${PPID_[$RT]}")" || return
}

p_need_detached() {
	[ "${RES[podman/$RT/run-detached]:-}" = PASS ] || fail "needs run-detached, which failed" || return
}

p_exec() {
	p_need_detached || return
	x "${PMC[@]}" exec hp-$RT-d sh -c 'echo exec-$((6*7)) $(tr "\0" " " </proc/1/cmdline); exit 6'
	[ "$RC" = 6 ] || fail "podman exec ... exit 6: rc=$RC, want 6: $(short "$OUT")" || return
	grep -q '^exec-42 sh -c trap' <<<"$OUT" || fail "exec output / pid 1 of the container wrong: $(short "$OUT")" || return
}

p_exec_it() {
	p_need_detached || return
	x sh -c "printf 'tty; echo in-\$((6*7)); exit 4\n' | script -qec 'podman ${PODMAN_GLOBAL[*]} --runtime $RTBIN exec -it hp-$RT-d sh' /dev/null"
	[ "$RC" = 4 ] || fail "podman exec -it (stdin: tty; echo; exit 4): rc=$RC, want 4: $(short "$OUT")" || return
	grep -q '^/dev/pts/[0-9]' <<<"$OUT" || fail "exec -it did not get a pty: $(short "$OUT")" || return
	grep -q '^in-42' <<<"$OUT" || fail "command read from stdin did not run: $(short "$OUT")" || return
}

p_stop() {
	p_need_detached || return
	local t0 ms st
	t0=$(now_ms)
	x "${PMC[@]}" stop -t 10 hp-$RT-d
	ms=$(($(now_ms) - t0))
	[ "$RC" = 0 ] || fail "podman stop: rc=$RC: $(short "$OUT")" || return
	st=$(pstate hp-$RT-d '{{.State.Running}} {{.State.ExitCode}}')
	[ "$st" = "false 0" ] || fail "after stop: running/exit code '$st', want 'false 0' (the TERM trap exits 0)" || return
	[ $ms -lt 8000 ] || fail "stop took ${ms}ms: SIGTERM did not reach the trap" || return
	! kill -0 "${PPID_[$RT]}" 2>/dev/null || fail "container pid ${PPID_[$RT]} alive after stop" || return
}

p_rm() {
	[ "${RES[podman/$RT/stop]:-}" = PASS ] || fail "needs stop, which failed" || return
	local id
	id=$(pstate hp-$RT-d '{{.Id}}')
	x "${PMC[@]}" rm hp-$RT-d
	[ "$RC" = 0 ] || fail "podman rm: rc=$RC: $(short "$OUT")" || return
	pstate hp-$RT-d '{{.Id}}' >/dev/null && { fail "container still listed after rm"; return; }
	p_state_gone "$id" || return
}

p_memory() {
	prun_args
	x "${PMC[@]}" run --rm "${PRUN[@]}" --memory 64m $PIMG cat /sys/fs/cgroup/memory/memory.limit_in_bytes
	[ "$RC" = 0 ] || fail "podman run --memory 64m: rc=$RC: $(short "$OUT")" || return
	grep -qx 67108864 <<<"$OUT" || fail "inside memory.limit_in_bytes: $(short "$OUT"), want 67108864" || return
}

p_proc_sys_mounts() {
	prun_args
	x "${PMC[@]}" run --rm "${PRUN[@]}" $PIMG sh -c "$PROC_SYS_SCRIPT"
	check_proc_sys_mounts
}

p_rm_force() {
	prun_args
	local n=hp-$RT-rmf pid id
	pclean $n
	x "${PMC[@]}" run -d --name $n "${PRUN[@]}" $PIMG sleep 300
	[ "$RC" = 0 ] || fail "podman run -d: rc=$RC: $(short "$OUT")" || return
	pid=$(pstate $n '{{.State.Pid}}')
	id=$(pstate $n '{{.Id}}')
	x "${PMC[@]}" rm -f -t 2 $n
	[ "$RC" = 0 ] || fail "podman rm -f: rc=$RC: $(short "$OUT")" || return
	pstate $n '{{.Id}}' >/dev/null && { fail "container still listed after rm -f"; return; }
	! kill -0 "$pid" 2>/dev/null || fail "container process $pid alive after rm -f" || return
	p_state_gone "$id" || return
}

# p_state_gone ID: podman calls the runtime without --root, so its state is
# in the runtime's default root (runc: /run/runc, hako-runtime:
# /run/hako-runtime); after rm it must be gone.
p_state_gone() {
	local d=/run/runc/$1
	[ $RT = runc ] || d=/run/hako-runtime/$1
	[ ! -e "$d" ] || fail "runtime state $d left behind after rm" || return
}

run_podman() {
	mkdir -p "$PM"/{root,run,tmp,net,static,volumes}
	local nofile nproc
	nofile=$(ulimit -Hn)
	nproc=$(ulimit -Hu)
	[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
	cat >"$PM/containers.conf" <<EOF
[containers]
netns = "none"
# As root, podman asks for a nofile hard limit of 1048576 and nproc at our
# own hard limit, but lowers its own nproc to 32768 first: a runtime without
# CAP_SYS_RESOURCE (runc as well) cannot raise a hard limit above its own.
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM/events.log"
tmp_dir = "$PM/tmp"
static_dir = "$PM/static"
volume_path = "$PM/volumes"
lock_type = "file"
# podman passes --log-format=json and --log to the runtimes listed here, and
# reads their errors from that log; runc is listed by default.
runtime_supports_json = ["crun", "runc", "hako-runtime"]
[network]
network_config_dir = "$PM/net"
EOF
	cat >"$PM/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PM/root"
runroot = "$PM/run"
EOF
	export CONTAINERS_CONF=$PM/containers.conf CONTAINERS_STORAGE_CONF=$PM/storage.conf
	if ! podman "${PODMAN_GLOBAL[@]}" import -q -c 'CMD ["/bin/sh"]' "$T/image/rootfs.tar" $PIMG >"$LOGDIR/podman-import.log" 2>&1; then
		peer_setup_failed podman "podman import: $(cat "$LOGDIR/podman-import.log")"
		return
	fi
	scenario podman run-exit-code p_run_exit_code
	scenario podman run-enoent p_run_enoent
	scenario podman run-it p_run_it
	scenario podman run-detached p_run_detached
	scenario podman exec p_exec
	scenario podman exec-it p_exec_it
	scenario podman stop p_stop
	scenario podman rm p_rm
	scenario podman memory p_memory
	scenario podman rm-force p_rm_force
	scenario podman proc-sys-mounts p_proc_sys_mounts
	stop_podman
}

# ================================================================ main

for p in $PEERS; do
	case $p in
	docker) run_docker ;;
	containerd) run_containerd ;;
	podman) run_podman ;;
	*) echo "$0: unknown peer $p" >&2; exit 2 ;;
	esac
done

cleanup
failed_any=$((hako_fail + hako_both))
for k in "${!RES[@]}"; do [ "${RES[$k]}" = PASS ] || failed_any=1; done
if [ -n "$leaks" ]; then echo "LEAK after clean-up: $leaks"; fi
if [ "$failed_any" != 0 ] || [ -n "$leaks" ] || [ -n "$keep_logs" ]; then
	echo "logs kept in $LOGDIR"
else
	rm -rf "$LOGDIR"
fi
[ $hako_both = 0 ] || echo "$hako_both hako scenario(s) also fail with runc (not counted)"
echo "$hako_pass passed, $hako_fail failed"
leaks_rc=0
[ -z "$leaks" ] || leaks_rc=1
trap - EXIT
if [ $hako_fail -gt 0 ] || [ $leaks_rc = 1 ]; then exit 1; fi
[ $setup_failed = 0 ] || exit 2
exit 0
