#!/usr/bin/env bash
# make cluster-podman: `make cluster` with the replicas run from the image
# (`make image`) by `podman kube play` on deploy/kubernetes: the
# Deployment's pod template becomes one Pod per replica on the host's
# network (podman ignores Services), SeaweedFS and nginx run on the host as
# in `make cluster`. Ctrl-C stops it all (`podman kube down`).
# Rootful podman; where its defaults do not run containers, point
# CONTAINERS_CONF at a containers.conf (see the README).
set -euo pipefail
CLUSTER_RUNTIME=podman exec "$(dirname "$0")/cluster.sh" "$@"
