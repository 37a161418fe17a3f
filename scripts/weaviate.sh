#!/usr/bin/env bash
# A local Weaviate cluster for gabarit's vector index (--index weaviate://…): N nodes
# (3 by default) on loopback, data under var/weaviate of the repository.
#
#   scripts/weaviate.sh build         build the server once (go install, about 10 minutes on
#                                     2 cores) into the cache; reused when already there
#   scripts/weaviate.sh path          print the server binary's path
#   scripts/weaviate.sh start         start every node that does not run, wait until each is
#                                     ready and the cluster lists every node as healthy
#   scripts/weaviate.sh stop          stop every node (SIGTERM, SIGKILL after 20 s; data kept)
#   scripts/weaviate.sh status        say which nodes run: exit 0 when all do, 3 otherwise
#   scripts/weaviate.sh url           print the index URL: --index "$(scripts/weaviate.sh url)"
#   scripts/weaviate.sh kill N        SIGKILL node N (0-based), for fault tests
#   scripts/weaviate.sh start-node N  start node N again (it rejoins), wait until the cluster is healthy
#   scripts/weaviate.sh clean         stop every node and delete var/weaviate
#
# The binary: $GABARIT_CACHE (default ~/.cache/gabarit)/weaviate/v1.35.2/weaviate-server,
# built with CGO_ENABLED=0 by the Go toolchain $GO (default: go on PATH, else /usr/local/go/bin/go).
# Nodes: $GABARIT_WV_NODES (default 3); node i listens on 127.0.0.1 at $GABARIT_WV_PORT
# (default 55680) + 10*i for REST, +1 gRPC, +2 gossip, +3 data, +4 Raft, +5 Raft RPC. Node
# count and base port are kept in var/weaviate when the cluster is first started. Weaviate
# 1.35 binds its gRPC and data ports on every interface (it has no setting for them); the
# others are bound to 127.0.0.1. Each node's Go heap is bounded by GOMEMLIMIT=$GABARIT_WV_MEM
# (default 2GiB); $GABARIT_WV_ENV adds settings to every node ("NAME=value NAME=value").
# Logs in var/weaviate/node<i>.log, process ids in var/weaviate/node<i>.pid.
# GABARIT_WV_DIR puts the cluster's files elsewhere than var/weaviate: with
# another GABARIT_WV_PORT, a second cluster (the fault tests start their own).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=v1.35.2
cache=${GABARIT_CACHE:-$HOME/.cache/gabarit}
bindir=$cache/weaviate/$version
bin=$bindir/weaviate-server
base=${GABARIT_WV_DIR:-$root/var/weaviate}  # another directory (and GABARIT_WV_PORT) runs a second cluster
mem=${GABARIT_WV_MEM:-2GiB}
stop_wait=20  # seconds between SIGTERM and SIGKILL
ready_wait=120

die() { echo "weaviate.sh: $*" >&2; exit 1; }
say() { echo "weaviate.sh: $*" >&2; }

# The cluster's shape, fixed when it is first started (its Raft state names
# the nodes and their ports).
port=${GABARIT_WV_PORT:-55680}
nodes=${GABARIT_WV_NODES:-3}
if [ -f "$base/port" ]; then port=$(cat "$base/port"); fi
if [ -f "$base/nodes" ]; then nodes=$(cat "$base/nodes"); fi
if [ -n "${GABARIT_WV_PORT:-}" ] && [ "$GABARIT_WV_PORT" != "$port" ]; then
  say "the cluster in $base was created on port $port; GABARIT_WV_PORT=$GABARIT_WV_PORT is ignored (scripts/weaviate.sh clean starts afresh)"
fi
if [ -n "${GABARIT_WV_NODES:-}" ] && [ "$GABARIT_WV_NODES" != "$nodes" ]; then
  say "the cluster in $base was created with $nodes nodes; GABARIT_WV_NODES=$GABARIT_WV_NODES is ignored (scripts/weaviate.sh clean starts afresh)"
fi
case "$port" in '' | *[!0-9]*) die "GABARIT_WV_PORT must be a port number, not \"$port\"" ;; esac
case "$nodes" in '' | *[!0-9]* | 0) die "GABARIT_WV_NODES must be a number of nodes ≥ 1, not \"$nodes\"" ;; esac
[ $((port + 10 * (nodes - 1) + 5)) -le 65535 ] && [ "$port" -ge 1024 ] ||
  die "ports $port to $((port + 10 * (nodes - 1) + 5)) do not fit in 1024-65535: change GABARIT_WV_PORT"

rest_port() { echo $((port + 10 * $1)); }
grpc_port() { echo $((port + 10 * $1 + 1)); }
gossip_port() { echo $((port + 10 * $1 + 2)); }
data_port() { echo $((port + 10 * $1 + 3)); }
raft_port() { echo $((port + 10 * $1 + 4)); }
rpc_port() { echo $((port + 10 * $1 + 5)); } # Weaviate's local mode wants Raft port + 1

pidfile() { echo "$base/node$1.pid"; }
logfile() { echo "$base/node$1.log"; }

# node_pid prints node i's process id when it runs (a weaviate-server
# process: a stale pid file naming a reused id does not count).
node_pid() {
  local f pid
  f=$(pidfile "$1")
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q weaviate-server || return 1
  echo "$pid"
}
node_runs() { node_pid "$1" >/dev/null; }

check_node() {
  case "${1:-}" in '' | *[!0-9]*) die "name a node: 0 to $((nodes - 1))" ;; esac
  [ "$1" -lt "$nodes" ] || die "no node $1: the cluster has nodes 0 to $((nodes - 1))"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_binary() {
  [ -x "$bin" ] || die "the Weaviate server is not built ($bin): run scripts/weaviate.sh build (about 10 minutes once, then cached)"
}

build() {
  if [ -x "$bin" ]; then
    say "reusing the Weaviate $version server built before: $bin"
    return
  fi
  local go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
  [ -x "$go" ] || command -v "$go" >/dev/null || die "no Go toolchain ($go): run scripts/install-deps.sh"
  mkdir -p "$cache/weaviate"
  # One build at a time (make and CI may both ask); the second one reuses the first's binary.
  exec 9>"$cache/weaviate/.build.lock"
  if command -v flock >/dev/null; then flock 9; fi
  if [ -x "$bin" ]; then
    say "reusing the Weaviate $version server built before: $bin"
    return
  fi
  local tmp start
  tmp=$(mktemp -d "$cache/weaviate/$version.build.XXXXXX")
  say "building the Weaviate $version server into $bin (about 10 minutes on 2 cores, once)"
  start=$(date +%s)
  (cd "$tmp" && CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-modcacherw "$go" install "github.com/weaviate/weaviate/cmd/weaviate-server@$version") ||
    { rm -rf "$tmp"; die "the build failed (see the messages above)"; }
  mkdir -p "$bindir"
  mv -f "$tmp/weaviate-server" "$bin" # same file system: the binary appears whole or not at all
  rm -rf "$tmp"
  say "built in $(($(date +%s) - start)) s: $bin"
}

# start_node launches node i in the background. It joins the gossip of the
# nodes that already run (none for the first node of a new cluster).
start_node() {
  local i=$1 dir log join="" j p names="" extra=()
  dir=$base/node$i
  log=$(logfile "$i")
  for p in $(rest_port "$i") $(grpc_port "$i") $(gossip_port "$i") $(data_port "$i") $(raft_port "$i") $(rpc_port "$i"); do
    ! port_open "$p" || die "port $p (node $i) is already in use by another program: stop it, or choose other ports with GABARIT_WV_PORT (after scripts/weaviate.sh clean)"
  done
  for j in $(seq 0 $((nodes - 1))); do
    names=${names:+$names,}node$j:$(raft_port "$j")
    if [ "$j" != "$i" ] && node_runs "$j"; then join=${join:+$join,}127.0.0.1:$(gossip_port "$j"); fi
  done
  # shellcheck disable=SC2206 # NAME=value words, split on spaces on purpose
  [ -z "${GABARIT_WV_ENV:-}" ] || extra=(${GABARIT_WV_ENV})
  mkdir -p "$dir"
  echo "--- $(date -u +%FT%TZ) weaviate.sh: starting node$i" >>"$log"
  # A clean environment: only these settings reach the server (GABARIT_WV_ENV for more).
  (cd "$dir" && exec setsid env -i PATH="$PATH" HOME="$HOME" ${GOMAXPROCS:+GOMAXPROCS="$GOMAXPROCS"} \
    PERSISTENCE_DATA_PATH="$dir" \
    DEFAULT_VECTORIZER_MODULE=none \
    ENABLE_MODULES= \
    DISABLE_TELEMETRY=true \
    QUERY_MAXIMUM_RESULTS=50000 \
    LOG_LEVEL=info \
    GO_PROFILING_DISABLE=true \
    AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true \
    CLUSTER_HOSTNAME="node$i" \
    CLUSTER_IN_LOCALHOST=true \
    CLUSTER_BIND_ADDR=127.0.0.1 \
    CLUSTER_GOSSIP_BIND_PORT="$(gossip_port "$i")" \
    CLUSTER_DATA_BIND_PORT="$(data_port "$i")" \
    CLUSTER_JOIN="$join" \
    RAFT_PORT="$(raft_port "$i")" \
    RAFT_INTERNAL_RPC_PORT="$(rpc_port "$i")" \
    RAFT_JOIN="$names" \
    RAFT_BOOTSTRAP_EXPECT="$nodes" \
    GRPC_PORT="$(grpc_port "$i")" \
    LIMIT_RESOURCES=true \
    GOMEMLIMIT="$mem" \
    "${extra[@]}" \
    "$bin" --host 127.0.0.1 --port "$(rest_port "$i")" --scheme http) </dev/null >>"$log" 2>&1 &
  echo $! >"$(pidfile "$i")"
}

# fail_node stops with the tail of node i's log.
fail_node() {
  local i=$1 why=$2 log
  log=$(logfile "$i")
  echo "weaviate.sh: node$i $why; the end of $log:" >&2
  tail -n 25 "$log" >&2 || true
  die "node$i $why (scripts/weaviate.sh stop stops the others)"
}

# healthy_on says whether node i's /v1/nodes lists every node as HEALTHY.
healthy_on() {
  local body j
  body=$(curl -fsS -m 5 "http://127.0.0.1:$(rest_port "$1")/v1/nodes?output=minimal" 2>/dev/null) || return 1
  [ "$(grep -o '"status":"HEALTHY"' <<<"$body" | wc -l)" -eq "$nodes" ] || return 1
  for j in $(seq 0 $((nodes - 1))); do grep -q "\"name\":\"node$j\"" <<<"$body" || return 1; done
}

# wait_healthy waits until every node runs, answers ready, and sees the
# whole cluster healthy; it fails after $ready_wait seconds.
wait_healthy() {
  local deadline i ok
  deadline=$(($(date +%s) + ready_wait))
  for i in $(seq 0 $((nodes - 1))); do
    until curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$(rest_port "$i")/v1/.well-known/ready" 2>/dev/null; do
      node_runs "$i" || fail_node "$i" "stopped"
      [ "$(date +%s)" -lt "$deadline" ] || fail_node "$i" "is not ready after $ready_wait s"
      sleep 1
    done
  done
  while :; do
    ok=1
    for i in $(seq 0 $((nodes - 1))); do
      node_runs "$i" || fail_node "$i" "stopped"
      healthy_on "$i" || { ok=0; break; }
    done
    [ "$ok" = 0 ] || return 0
    [ "$(date +%s)" -lt "$deadline" ] || fail_node "$i" "does not see all $nodes nodes healthy after $ready_wait s"
    sleep 1
  done
}

# launch starts node i when it does not run, and waits until its gossip
# port answers, so that the next node can join it.
launch() {
  local i=$1 t
  local pid
  if node_runs "$i"; then return 1; fi
  start_node "$i"
  pid=$(cat "$(pidfile "$i")")
  for t in $(seq 1 60); do
    port_open "$(gossip_port "$i")" && return 0
    kill -0 "$pid" 2>/dev/null || fail_node "$i" "stopped at start"
    sleep 1
  done
  fail_node "$i" "does not listen on its gossip port 127.0.0.1:$(gossip_port "$i") after 60 s"
}

start() {
  need_binary
  mkdir -p "$base"
  [ -f "$base/port" ] || echo "$port" >"$base/port"
  [ -f "$base/nodes" ] || echo "$nodes" >"$base/nodes"
  local i started=0
  for i in $(seq 0 $((nodes - 1))); do
    if launch "$i"; then started=$((started + 1)); fi
  done
  wait_healthy
  if [ "$started" = 0 ]; then
    say "the $nodes-node cluster already runs on 127.0.0.1:$port…; the index URL: scripts/weaviate.sh url"
  else
    say "Weaviate $version runs on 127.0.0.1: a $nodes-node cluster, REST ports $(rest_port 0) to $(rest_port $((nodes - 1))), data in $base; the index URL: scripts/weaviate.sh url"
  fi
}

start_one() {
  check_node "$1"
  need_binary
  [ -f "$base/nodes" ] || die "no cluster in $base yet: run scripts/weaviate.sh start"
  if launch "$1"; then say "node$1 started"; else say "node$1 already runs"; fi
  wait_healthy
  say "node$1 runs and the cluster's $nodes nodes are healthy"
}

stop() {
  local i pid pids=() t any=0
  for i in $(seq 0 $((nodes - 1))); do
    if pid=$(node_pid "$i"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$i:$pid")
      any=1
    fi
  done
  if [ "$any" = 0 ]; then
    say "not running"
    rm -f "$base"/node*.pid
    return
  fi
  for t in $(seq 1 $((stop_wait * 2))); do
    any=0
    for i in $(seq 0 $((nodes - 1))); do node_runs "$i" && any=1; done
    [ "$any" = 1 ] || break
    sleep 0.5
  done
  for i in $(seq 0 $((nodes - 1))); do
    if pid=$(node_pid "$i"); then
      say "node$i did not stop within $stop_wait s: killed"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$base"/node*.pid
  say "stopped"
}

kill_node() {
  check_node "$1"
  local pid t
  pid=$(node_pid "$1") || { say "node$1 is not running"; return; }
  kill -KILL "$pid"
  for t in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$(pidfile "$1")"
  say "node$1 killed (pid $pid)"
}

status() {
  local i pid down=0
  for i in $(seq 0 $((nodes - 1))); do
    if pid=$(node_pid "$i"); then
      echo "node$i: running (pid $pid), REST 127.0.0.1:$(rest_port "$i"), gRPC 127.0.0.1:$(grpc_port "$i")"
    else
      echo "node$i: not running"
      down=$((down + 1))
    fi
  done
  [ "$down" = 0 ] || return 3
}

url() {
  local i rest="" grpc=""
  for i in $(seq 0 $((nodes - 1))); do
    rest=${rest:+$rest,}127.0.0.1:$(rest_port "$i")
    grpc=${grpc:+$grpc,}127.0.0.1:$(grpc_port "$i")
  done
  echo "weaviate://$rest?grpc=$grpc"
}

clean() {
  stop
  rm -rf "$base"
  say "removed $base"
}

case "${1:-}" in
  build) build ;;
  path) echo "$bin" ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  kill) kill_node "${2:-}" ;;
  start-node) start_one "${2:-}" ;;
  clean) clean ;;
  *) echo "usage: scripts/weaviate.sh build|path|start|stop|status|url|kill N|start-node N|clean" >&2; exit 2 ;;
esac
