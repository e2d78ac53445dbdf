#!/usr/bin/env bash
# Installs what tsd and its tests need on a fresh Debian 12 machine (as root): the OCI runtime,
# the peers the tests compare against, the distribution registry, then the npm packages and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(runc skopeo umoci podman buildah docker-registry busybox-static tini zstd uidmap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# podman on this kind of machine needs ulimits within the hard limits (README, "Peers")
if ! grep -qs default_ulimits /etc/containers/containers.conf; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n' >> /etc/containers/containers.conf
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
npm run --silent build >&2
