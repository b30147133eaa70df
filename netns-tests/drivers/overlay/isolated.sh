#!/bin/sh
# Runs a command (e.g. mocha on the overlay tests) in a mount namespace with a
# private /run/netns: suites that run at the same time and sweep "strand-*"
# namespaces they did not make cannot remove this run's sandboxes, and this
# run cannot remove theirs.
# usage: sh netns-tests/drivers/overlay/isolated.sh npx mocha ...
exec unshare -m --propagation private sh -c 'mount -t tmpfs strand-netns /run/netns && exec "$@"' isolated "$@"
