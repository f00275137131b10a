#!/usr/bin/env bash
# Make sure the Dockerfile's base image (python:3.11-slim by default) exists in the local Docker engine.
# Where a registry answers it is pulled as usual; where none does (an offline CI machine), a stand-in is built from
# Debian packages: debootstrap (bookworm, minbase) from this machine's own apt mirror, `docker import`, then
# Debian's Python 3.11 in a venv at /usr/local/python first on PATH (where the official image has its Python), with
# this machine's pip configuration and extra CA certificates so that pip inside the build reaches the same index.
#   scripts/docker_base.sh [IMAGE]      (IMAGE defaults to python:3.11-slim)
set -euo pipefail
cd "$(dirname "$0")/.."

image="${1:-python:3.11-slim}"
rootfs_tag="chatbotws-base:debian"
suite="bookworm"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "docker_base: $image is present"
  exit 0
fi
if timeout 60 docker pull "$image" >/dev/null 2>&1; then
  echo "docker_base: pulled $image"
  exit 0
fi
echo "docker_base: $image cannot be pulled; building a stand-in from Debian $suite packages"

# The mirror this machine's apt uses, read at run time (deb822 .sources files first, then one-line lists).
mirror_of() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
      /^$/ { if (found && uri != "") { print uri; exit } uri = ""; found = 0 }
      END { if (found && uri != "") print uri }' "$f" | head -n1
  done
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
    | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2 }'
}
mirror="$(mirror_of 2>/dev/null | head -n1 || true)"
if [ -z "$mirror" ]; then
  echo "docker_base: no apt mirror for $suite in /etc/apt/sources.list*" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! docker image inspect "$rootfs_tag" >/dev/null 2>&1; then
  debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  # No package lists or caches in the base layer (apt-get update fetches fresh lists when a build needs them).
  rm -rf "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/var/cache/apt/*.bin "$work/rootfs"/var/cache/apt/archives/*.deb
  tar -C "$work/rootfs" -c . | docker import - "$rootfs_tag" >/dev/null
  rm -rf "$work/rootfs"
fi

# A throw-away build context: the Dockerfile plus this machine's pip config and extra CA certificates.
mkdir -p "$work/context/ca-certificates"
cp scripts/docker_base.Dockerfile "$work/context/Dockerfile"
if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$work/context/pip.conf"; else : >"$work/context/pip.conf"; fi
cp /usr/local/share/ca-certificates/*.crt "$work/context/ca-certificates/" 2>/dev/null || true
docker build --network host --build-arg BASE="$rootfs_tag" -t "$image" "$work/context" >"$work/build.log" 2>&1 \
  || { tail -n 30 "$work/build.log" >&2; exit 1; }
echo "docker_base: built the stand-in $image"
