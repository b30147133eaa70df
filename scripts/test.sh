#!/usr/bin/env bash
# Checks the import layering, then runs the unit tests and the namespace tests
# (root, real kernel state).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=(dist/test/**/*.test.js dist/netns-tests/**/*.test.js)
if ((${#files[@]} == 0)); then
  echo "test: no compiled test files found under dist/" >&2
  exit 1
fi
# The layering rules first (.dependency-cruiser.cjs): an upward import fails the run.
npx depcruise --config .dependency-cruiser.cjs --output-type err common netlink store ipam firewall cluster core drivers runtime plugins agent cli scripts test netns-tests bench
exec npx mocha --timeout 60000 --exit "${files[@]}"
