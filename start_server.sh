#!/usr/bin/env bash
# Starts the whole platform with one command, as in the seed:
#   ./start_server.sh [RR|FIFO|WEIGHTED] [extra faas-server flags...]
# Builds first if build/bin/server is missing.
set -euo pipefail
cd "$(dirname "$0")"
strategy="${1:-RR}"
shift || true
case "${strategy^^}" in
  RR|FIFO|WEIGHTED) ;;
  *) echo "usage: $0 [RR|FIFO|WEIGHTED] [faas-server flags...]" >&2; exit 2 ;;
esac
if [ ! -x build/bin/server ] || [ ! -x build/bin/worker ]; then
  echo "[start_server] building (first run)..." >&2
  make build
fi
exec ./build/bin/server "${strategy^^}" "$@"
