#!/usr/bin/env bash
# Builds the ordo image of deploy/Dockerfile: the binary is compiled here,
# on the host, static (CGO_ENABLED=0, so it runs on an empty base), into
# the build context, and the Dockerfile only copies it.
#
#   deploy/build-image.sh [TAG]          (default: $ORDO_IMAGE, else ordo:latest)
#
# ORDO_DOCKER_CONTEXT picks the context directory (default bin/docker);
# GO the go command.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-${ORDO_IMAGE:-ordo:latest}}
ctx=${ORDO_DOCKER_CONTEXT:-bin/docker}
mkdir -p "$ctx"
rm -rf "$ctx/ordo" "$ctx/data"
# The image's /data (owned by the node's user through COPY --chown).
mkdir "$ctx/data"
CGO_ENABLED=0 "${GO:-go}" build -buildvcs=auto -trimpath -ldflags='-s -w' -o "$ctx/ordo" ./cmd/ordo
docker build --quiet -f deploy/Dockerfile -t "$tag" "$ctx" >/dev/null
echo "built image $tag"
