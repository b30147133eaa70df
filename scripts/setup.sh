#!/usr/bin/env bash
# Brings a fresh Debian machine that has only Node and npm to the point where
# strand builds and its tests run: system packages, npm dependencies, a build.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages strand's tests and demo use (installed only when missing); gcc
# builds the native CNI front `strand cni install` puts before each plugin;
# iperf3 measures overlay against underlay throughput (npm run bench -- overlay);
# ethtool turns checksum offload off on the simulated underlay (overlay checksum test);
# curl asks etcd's health endpoint and podman's published ports in the tests;
# redis-sentinel runs the store's Sentinel tests (test/store/sentinel.test.ts).
want=(iproute2 iptables nftables iputils-ping util-linux curl gcc libc6-dev etcd-server redis-server redis-sentinel openssl containernetworking-plugins podman runc busybox-static docker.io iperf3 ethtool)
missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies, again only when the lock file changed since the last install.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# A clean build: files of sources that moved or went must not linger in dist/ (the test run globs it).
rm -rf dist
npx tsc -p tsconfig.json
