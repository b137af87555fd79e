#!/usr/bin/env bash
# Fails when package-lock.json is not the lock npm would write for package.json:
# a dependency added to package.json without `npm install`, or a lock written
# from a node_modules that lacked other platforms' optional binaries (which
# `npm ci` then refuses with "Missing: @biomejs/cli-... from lock file").
# npm re-resolves the lock in a scratch folder and the two are compared.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp package.json package-lock.json "$scratch/"
(cd "$scratch" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
if ! cmp -s package-lock.json "$scratch/package-lock.json"; then
  echo "package-lock.json is out of sync with package.json. Regenerate it with" >&2
  echo "  rm -rf node_modules package-lock.json && npm install" >&2
  diff -u package-lock.json "$scratch/package-lock.json" | head -40 >&2 || true
  exit 1
fi
echo "package-lock.json matches package.json"
