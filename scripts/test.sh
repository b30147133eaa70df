#!/usr/bin/env bash
# Runs the unit tests, then the namespace tests (root, real kernel state).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=(dist/test/**/*.test.js dist/netns-tests/**/*.test.js)
if ((${#files[@]} == 0)); then
  echo "test: no compiled test files found under dist/" >&2
  exit 1
fi
exec npx mocha --timeout 60000 --exit "${files[@]}"
