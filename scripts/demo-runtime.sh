#!/usr/bin/env bash
# The main job on its built-in default: a busybox container run by
# hako-runtime from a bundle made of Debian's busybox-static, with the tree
# of every step it took and how long each took.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=$PWD/bin/hako-runtime
[[ -x $RUNTIME ]] || { echo "demo: build first (make build)" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "demo: containers need root (or run hako-runtime with a rootless spec)" >&2; exit 1; }

bundle=$(mktemp -d /tmp/hako-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
./scripts/mkbundle.sh "$bundle" >/dev/null
cd "$bundle"
"$RUNTIME" spec
# A non-interactive variant of the default spec: print where we are.
jq '.process.terminal = false
  | .process.args = ["sh", "-c", "echo hello from $(hostname), pid $$, as $(id -un); echo; cat /proc/self/cgroup | head -3"]' \
  config.json >config.json.new && mv config.json.new config.json

echo "\$ hako-runtime --trace run demo-$$"
exec "$RUNTIME" --trace run "demo-$$"
