#!/usr/bin/env bash
# `critest -benchmark` against hakod and against Debian's containerd 1.6
# (runc, CNI bridge + portmap), side by side on one machine in one run:
# the same images from the same loopback registry, the same parameters
# (N operations, 2 in parallel), the runtimes taking turns ROUNDS times so
# that load from other jobs hits both alike. Prints each operation's
# median and p95 for both and the ratio hakod/containerd.
#
#   bench/cri/run.sh [BIN_DIR]        N=20 ROUNDS=2 by default
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/bin}
n=${N:-20}
rounds=${ROUNDS:-2}
# shellcheck source=../../test/critest/lib.sh
. "$root/test/critest/lib.sh"
command -v containerd >/dev/null || { log "containerd is not installed (apt-get install containerd)"; exit 1; }

# containerd with its own root, state, socket, CNI network and registry
# hosts (the same certs.d hakod reads): reference/critest-offline.md §2.
cd=$work/containerd
mkdir -p "$cd/net.d" "$cd/cni-data"
spport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$cd/net.d/10-cribench.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "cribench", "plugins": [
  {"type": "bridge", "bridge": "cribench0", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$cd/cni-data"}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "firewall"}
]}
EOF
cat > "$cd/config.toml" <<EOF
version = 2
root = "$cd/root"
state = "$cd/state"
[grpc]
  address = "$cd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "$spport"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$cd/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$cd/runc"
EOF
containerd --config "$cd/config.toml" > "$cd/containerd.log" 2>&1 &
ctrdpid=$!
stop_containerd() {
	CRI_CONFIG_FILE=/dev/null "$crictl" -r "unix://$cd/containerd.sock" -i "unix://$cd/containerd.sock" rmp -fa >/dev/null 2>&1
	kill "$ctrdpid" 2>/dev/null && wait "$ctrdpid" 2>/dev/null
	# The shims of this containerd only (their -address names its socket).
	for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $cd/containerd.sock" || true); do kill -9 "$p" 2>/dev/null; done
	grep -o " $cd[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	ip link del cribench0 2>/dev/null
}
cleanup_hooks+=(stop_containerd)
for _ in $(seq 200); do [[ -S $cd/containerd.sock ]] && break; sleep 0.05; done

params=$work/bench.yaml
printf 'containersNumber: %d\ncontainersNumberParallel: 2\npodsNumber: %d\npodsNumberParallel: 2\nimagesNumber: %d\nimagesNumberParallel: 2\n' "$n" "$n" "$n" > "$params"
bench() { # bench NAME SOCKET ROUND
	local out=$work/bench/$1/$3
	mkdir -p "$out"
	"$critest" -benchmark -runtime-endpoint "unix://$2" -image-endpoint "unix://$2" -benchmarking-params-file "$params" \
		-benchmarking-output-dir "$out" -ginkgo.no-color > "$out/log" 2>&1 ||
		log "$1: a benchmark spec failed: $(grep -m1 -A3 '^  \[FAILED\]' "$out/log" | tr -s ' \n' ' ')"
	ls "$out"/*_benchmark_data.json >/dev/null 2>&1 || { log "$1 benchmark wrote no data"; tail -30 "$out/log" >&2; exit 1; }
}
for r in $(seq "$rounds"); do
	log "round $r: hakod"
	bench hakod "$sock" "$r"
	log "round $r: containerd"
	bench containerd "$cd/containerd.sock" "$r"
done
python3 - "$work/bench" <<'EOF'
import glob, json, os, statistics, sys
base = sys.argv[1]
def load(rt):
    ops = {}
    for f in glob.glob(os.path.join(base, rt, "*", "*_benchmark_data.json")):
        d = json.load(open(f))
        names = d["operationsNames"]
        for r in d.get("datapoints", []):
            for name, ns in zip(names, r["operationsDurationsNs"]):
                if ns > 0:
                    ops.setdefault(name, []).append(ns / 1e6)
    return ops
h, c = load("hakod"), load("containerd")
def p95(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
print(f"{'operation':<18} {'hakod median':>13} {'p95':>8} {'containerd median':>18} {'p95':>8} {'ratio':>6}")
worst = 0
for op in ["CreatePod", "StatusPod", "StopPod", "RemovePod", "CreateContainer", "StartContainer", "StatusContainer",
           "StopContainer", "RemoveContainer", "PullImage", "StatusImage", "RemoveImage", "ListImages"]:
    if op not in h or op not in c:
        continue
    mh, mc = statistics.median(h[op]), statistics.median(c[op])
    worst = max(worst, mh / mc)
    print(f"{op:<18} {mh:>10.1f} ms {p95(h[op]):>6.1f} {mc:>15.1f} ms {p95(c[op]):>6.1f} {mh / mc:>5.2f}x")
print(f"largest ratio: {worst:.2f}x (samples per op: hakod {len(h.get('CreatePod', []))}, containerd {len(c.get('CreatePod', []))})")
EOF
