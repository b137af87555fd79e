#!/usr/bin/env bash
# Installs the other Node.js majors the test suite runs the adapters on (22 and
# 24; the suite itself runs on the machine's Node, 20 or later) into
# .cache/node/<major>, from the npm registry's node-<platform>-<arch> packages
# (the binaries the `node` npm package installs). Pinned, so every run tests
# the same versions; already installed ones are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS=(22.23.5 24.22.3)
platform="$(node -p 'process.platform + "-" + process.arch')"
for version in "${VERSIONS[@]}"; do
  major="${version%%.*}"
  dir=".cache/node/$major"
  bin="$dir/node_modules/node-$platform/bin/node"
  if [ -x "$bin" ] && [ "$("$bin" --version)" = "v$version" ]; then continue; fi
  echo "installing Node $version for the tests into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "node-$platform@$version" >&2
done
