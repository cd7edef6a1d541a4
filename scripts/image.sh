#!/usr/bin/env bash
# make image: builds the faas image (Containerfile) from what `make build`
# produced, with podman or docker, whichever is present.
#   IMAGE  the tag (default localhost/faas:latest)
#   BASE   the Debian 12 base image (default localhost/debian:12; made with
#          debootstrap when missing, since the default registry may be
#          unreachable)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/faas:latest}
BASE=${BASE:-localhost/debian:12}
log() { echo "[image] $*" >&2; }

if command -v podman >/dev/null 2>&1; then
  engine=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
elif command -v docker >/dev/null 2>&1; then
  log "error: docker is installed but its daemon does not answer, and podman is not installed (apt-get install podman)"; exit 1
else
  log "error: neither podman nor docker is installed (apt-get install podman)"; exit 1
fi

for f in build/bin/server build/bin/worker build/bin/faas build/runtimes/qjs.wasm build/runtimes/python-snapshot.wasm build/runtimes/python-stdlib.zip; do
  [ -e "$f" ] || { log "error: $f is missing: run \`make toolchains build\` first"; exit 1; }
done

if ! "$engine" image exists "$BASE" 2>/dev/null && ! "$engine" image inspect "$BASE" >/dev/null 2>&1; then
  if [ "$BASE" != localhost/debian:12 ]; then
    log "error: the base image $BASE is not present; pull or import it first"; exit 1
  fi
  command -v debootstrap >/dev/null 2>&1 || {
    [ "$(id -u)" -eq 0 ] || { log "error: $BASE is missing and debootstrap is not installed (as root: apt-get install debootstrap)"; exit 1; }
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  root=$(mktemp -d /var/tmp/faas-debian-12.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  log "making $BASE with debootstrap (about 30 s)"
  debootstrap --variant=minbase bookworm "$root" >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  tar -C "$root" -c . | "$engine" import - "$BASE" >/dev/null
fi

# The host's CA bundle, lent to the build for PyPI (a network whose HTTPS
# goes through an inspecting proxy has its CA there); not kept in the image.
secret=()
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] && secret=(--secret "id=hostca,src=$ca")

log "building $IMAGE from $BASE with $engine"
"$engine" build --build-arg "BASE=$BASE" "${secret[@]}" -f Containerfile -t "$IMAGE" .
log "built $IMAGE"
