#!/usr/bin/env bash
# critest (cri-tools v1.37.0) against hakod's CRI, fully offline: builds
# crictl and critest from the Go module proxy, builds the images critest
# pulls (busybox, nginx, httpd, pause, nonewprivs, the user and tag test
# images) and pushes them to a docker-registry on loopback, starts a hakod
# of its own whose per-registry hosts map registry.k8s.io, gcr.io,
# k8s.gcr.io, public.ecr.aws and docker.io to that registry, runs critest
# and prints `N passed, N failed, N skipped`. Failures listed in
# known-failures.txt are reported but do not fail the run.
#
#   test/critest/run.sh [BIN_DIR] [-- extra critest args]
#
# Needs root, Debian 12 with docker-registry, gcc, iptables and
# containernetworking-plugins (scripts/deps.sh installs them).
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/bin}
[[ $# -gt 0 ]] && shift
[[ ${1:-} == -- ]] && shift
extra=("$@")
cache=${CRITEST_CACHE:-/var/tmp/hako-critest}
# shellcheck source=lib.sh
. "$here/lib.sh"

# critest.
log "running critest against hakod ($sock)"
cd "$work"
set +e
"$critest" -runtime-endpoint "unix://$sock" -image-endpoint "unix://$sock" \
	-ginkgo.json-report "$work/report.json" -ginkgo.no-color "${extra[@]}" > "$work/critest.log" 2>&1
rc=$?
set -e
tail -5 "$work/critest.log" >&2
[[ -f $work/report.json ]] || { log "no report (critest exit $rc)"; tail -50 "$work/critest.log"; tail -20 "$work/hakod.log"; exit 1; }
# Count the specs and match failures against the known ones.
python3 - "$work/report.json" "$here/known-failures.txt" "${CRITEST_RESULTS:-/dev/null}" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
known = [l.split("#")[0].strip() for l in open(sys.argv[2]) if l.split("#")[0].strip()]
passed = failed = skipped = 0
unknown = []
lines = []
for suite in report:
    for s in suite.get("SpecReports", []):
        if s.get("LeafNodeType") != "It":
            continue
        name = " ".join(s.get("ContainerHierarchyTexts") or []) + " " + s.get("LeafNodeText", "")
        st = s.get("State")
        if st == "passed":
            passed += 1
        elif st in ("skipped", "pending"):
            skipped += 1
            msg = (s.get("Failure") or {}).get("Message", "")
            lines.append(f"SKIP  {name}: {msg[:160]}")
        else:
            failed += 1
            msg = (s.get("Failure") or {}).get("Message", "").replace("\n", " ")
            lines.append(f"FAIL  {name}: {msg[:300]}")
            if not any(k in name for k in known):
                unknown.append(name)
with open(sys.argv[3], "w") as f:
    f.write("\n".join(lines) + "\n")
for l in lines:
    print(l, file=sys.stderr)
print(f"critest: {passed} passed, {failed} failed, {skipped} skipped")
if unknown:
    print("critest: failures not in known-failures.txt:\n  " + "\n  ".join(unknown), file=sys.stderr)
    sys.exit(1)
EOF
