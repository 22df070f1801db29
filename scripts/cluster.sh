#!/usr/bin/env bash
# cluster.sh — the HA test cluster on this host: three sphere nodes on
# 127.0.0.2, 127.0.0.3 and 127.0.0.4 (Raft on port 7400, the API on 7500 of
# each address) and a 4-node distributed MinIO (scripts/minio.sh
# start-dist), each sphere node mounting the same demo project. MinIO is the
# datasets' blob store (every node lists all four MinIO nodes, starting with
# its own, and fails over) and the target of the project's S3 connector
# "shared" (bucket "shared"; its endpoints are all four MinIO nodes, node 4
# first, and it fails over like the blob store).
#
# Everything lives under $CLUSTER_DIR (default ./.cluster):
#   master.key, cluster.secret   shared by the three nodes (node1 mints them)
#   nodeN/data, nodeN/sphere.sock, nodeN/server.log, nodeN/pid, nodeN/mnt
#   minio/                       the MinIO servers' drives, logs and pids
#
# Raft traffic is neither authenticated nor encrypted: here it stays on
# loopback; in production put --raft-addr on a private network.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-./.cluster}"
SPHERE="${SPHERE_BIN:-$REPO_ROOT/bin/sphere}"
: "${MINIO_BASE_PORT:=9300}"
NODES=(node1 node2 node3)
PROJECT=demo/lab/sandbox
# How long start waits for a node to answer, in seconds.
: "${SPHERE_START_TIMEOUT:=60}"

usage() {
	cat >&2 <<EOF
usage: $(basename "$0") COMMAND

  up          build sphere, start MinIO and the three nodes, mount the demo
              project on each; prints: NODE SOCKET MOUNT PROJECT
  down        unmount, stop the nodes and MinIO
  status      sphere cluster status (through the first node that answers)
  leader      the leader's node id
  kill NODE   kill -9 one node (node1, node2 or node3)
  start NODE  start a node again (after kill)

CLUSTER_DIR (default ./.cluster) holds all state; SPHERE_BIN overrides
the sphere binary (default bin/sphere, built by up).
EOF
	exit 2
}

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

index_of() {
	case "$1" in
	node1) echo 1 ;;
	node2) echo 2 ;;
	node3) echo 3 ;;
	*) die "no such node '$1' (node1, node2 or node3)" ;;
	esac
}

host_of() { echo "127.0.0.$(($(index_of "$1") + 1))"; }
dir_of() { echo "$CLUSTER_DIR/$1"; }
socket_of() { echo "$(dir_of "$1")/sphere.sock"; }

# alive NODE: its pid file names a running sphere server.
alive() {
	local pidfile pid
	pidfile="$(dir_of "$1")/pid"
	[[ -f "$pidfile" ]] || return 1
	pid="$(<"$pidfile")"
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
		[[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *sphere*server* ]]
}

sphere() { "$SPHERE" "$@"; }

MINIO_USER="${MINIO_ROOT_USER:-sphereadmin}"
MINIO_PASSWORD="${MINIO_ROOT_PASSWORD:-spheresecret}"

# minio_endpoint I: HOST:PORT of MinIO node I (0..3).
minio_endpoint() { echo "127.0.0.1:$((MINIO_BASE_PORT + $1))"; }

# blob_store_of NODE: every MinIO node, the node's "own" one first, so the
# three sphere nodes spread their load and each fails over to the rest.
blob_store_of() {
	local first=$(($(index_of "$1") - 1)) i eps=()
	for i in 0 1 2 3; do
		eps+=("$(minio_endpoint $(((first + i) % 4)))")
	done
	local IFS=,
	echo "s3://$MINIO_USER:$MINIO_PASSWORD@${eps[*]}/sphere-blobs"
}

# unmount_stale NODE: drop the mount a killed daemon left behind (every
# access to it fails with "transport endpoint is not connected"); a lazy
# unmount never blocks.
unmount_stale() {
	local mnt
	mnt="$(dir_of "$1")/mnt"
	if grep -qs " $mnt " /proc/mounts; then
		fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	fi
}

# launch NODE: start one node in its own session. node1 bootstraps the
# cluster (minting master.key and cluster.secret); the others join it on
# their first start and find their cluster in their own state afterwards.
launch() {
	local node="$1" host dir
	host="$(host_of "$node")"
	dir="$(dir_of "$node")"
	alive "$node" && die "$node is already running (pid $(<"$dir/pid"))"
	unmount_stale "$node"
	mkdir -p "$dir/data" "$dir/mnt"
	local args=(--socket "$dir/sphere.sock" server --node-id "$node" --data-dir "$dir/data"
		--raft-addr "$host:7400" --api-addr "$host:7500"
		--master-key-file "$CLUSTER_DIR/master.key" --cluster-secret-file "$CLUSTER_DIR/cluster.secret"
		--blob-store "$(blob_store_of "$node")")
	if [[ "$node" != node1 ]]; then
		args+=(--join "$(host_of node1):7500")
	fi
	setsid "$SPHERE" "${args[@]}" </dev/null >>"$dir/server.log" 2>&1 &
	echo $! >"$dir/pid"
}

# wait_serving NODE: until the node answers on its socket.
wait_serving() {
	local node="$1" deadline=$((SECONDS + SPHERE_START_TIMEOUT))
	until sphere --socket "$(socket_of "$node")" whoami >/dev/null 2>&1; do
		if ! alive "$node"; then
			tail -n 20 "$(dir_of "$node")/server.log" >&2 || true
			die "$node exited during start-up (see $(dir_of "$node")/server.log)"
		fi
		((SECONDS < deadline)) || die "$node does not answer after ${SPHERE_START_TIMEOUT}s"
		sleep 0.2
	done
}

# ok_or_exists CMD...: run a sphere command; "already exists" (exit 5) is fine.
ok_or_exists() {
	local rc=0 out
	out="$(sphere "$@" 2>&1)" || rc=$?
	((rc == 0 || rc == 5)) || die "sphere $* failed (exit $rc): $out"
}

cmd_up() {
	if [[ -z "${SPHERE_BIN:-}" ]]; then
		(cd "$REPO_ROOT" && go build -o bin/sphere ./cmd/sphere)
	fi
	if ! curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$MINIO_BASE_PORT/minio/health/live" 2>/dev/null; then
		"$REPO_ROOT/scripts/minio.sh" start-dist "$CLUSTER_DIR/minio" "$MINIO_BASE_PORT"
	fi

	# node1 first: it mints the keys the others need. On a restart of the
	# whole cluster every node waits for the others to form a quorum, so
	# then they all start at once.
	if [[ -f "$CLUSTER_DIR/cluster.secret" ]]; then
		for node in "${NODES[@]}"; do alive "$node" || launch "$node"; done
		for node in "${NODES[@]}"; do wait_serving "$node"; done
	else
		for node in "${NODES[@]}"; do
			launch "$node"
			wait_serving "$node"
		done
	fi

	local sock1
	sock1="$(socket_of node1)"
	ok_or_exists --socket "$sock1" org create "${PROJECT%%/*}"
	ok_or_exists --socket "$sock1" community create "${PROJECT%/*}"
	ok_or_exists --socket "$sock1" project create "$PROJECT"
	make_shared_resources "$sock1"
	for node in "${NODES[@]}"; do
		local mnt
		mnt="$(dir_of "$node")/mnt"
		if ! mountpoint -q "$mnt"; then
			sphere --socket "$(socket_of "$node")" --consistent mount "$PROJECT" "$mnt" >/dev/null
		fi
		printf '%s %s %s %s\n' "$node" "$(socket_of "$node")" "$mnt" "$PROJECT"
	done
}

# make_shared_resources SOCKET: the connector "shared" (bucket made with
# rclone, a test dependency anyway) and a sealed sample dataset, both in
# MinIO, so every node's mount has something to read from it.
make_shared_resources() {
	local sock="$1" endpoint endpoints i
	endpoint="$(minio_endpoint 3)"
	endpoints="http://$endpoint"
	for i in 0 1 2; do
		endpoints+=",http://$(minio_endpoint $i)"
	done
	env -u AWS_CA_BUNDLE rclone -q mkdir ":s3:shared" --s3-provider Minio --s3-endpoint "http://$endpoint" \
		--s3-access-key-id "$MINIO_USER" --s3-secret-access-key "$MINIO_PASSWORD" >/dev/null
	printf '%s' "$MINIO_PASSWORD" | ok_or_exists --socket "$sock" secret create "$PROJECT" S3_KEY
	ok_or_exists --socket "$sock" s3 create "$PROJECT" shared --endpoint "$endpoints" --bucket shared \
		--key-id "$MINIO_USER" --key-secret S3_KEY --mode rw --description "the cluster's shared bucket"
	ok_or_exists --socket "$sock" s3 activate "$PROJECT" shared
	if ! sphere --socket "$sock" dataset show "$PROJECT" samples >/dev/null 2>&1; then
		local src="$CLUSTER_DIR/samples"
		mkdir -p "$src"
		printf 'id,value\n1,one\n2,two\n' >"$src/table.csv"
		ok_or_exists --socket "$sock" dataset create "$PROJECT" samples --from "$src"
		ok_or_exists --socket "$sock" dataset seal "$PROJECT" samples
	fi
}

cmd_down() {
	[[ -d "$CLUSTER_DIR" ]] || die "no cluster in $CLUSTER_DIR"
	local node pids=() pid
	for node in "${NODES[@]}"; do
		if alive "$node"; then
			pid="$(<"$(dir_of "$node")/pid")"
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	# A daemon unmounts on SIGTERM; give each 20 s, then force.
	local deadline=$((SECONDS + 20))
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	for node in "${NODES[@]}"; do
		rm -f "$(dir_of "$node")/pid"
		unmount_stale "$node"
	done
	if [[ -d "$CLUSTER_DIR/minio" ]]; then
		"$REPO_ROOT/scripts/minio.sh" stop "$CLUSTER_DIR/minio"
	fi
	log "stopped ${#pids[@]} sphere node(s); state kept in $CLUSTER_DIR"
}

# any_socket: the socket of the first node that answers.
any_socket() {
	local node
	for node in "${NODES[@]}"; do
		if alive "$node" && sphere --socket "$(socket_of "$node")" whoami >/dev/null 2>&1; then
			socket_of "$node"
			return
		fi
	done
	die "no node answers in $CLUSTER_DIR"
}

cmd_status() {
	sphere --socket "$(any_socket)" cluster status
}

cmd_leader() {
	local leader
	leader="$(sphere --socket "$(any_socket)" --output json cluster status | jq -r '.leader')"
	[[ -n "$leader" ]] || die "no leader right now"
	echo "$leader"
}

cmd_kill() {
	local node="$1"
	index_of "$node" >/dev/null
	alive "$node" || die "$node is not running"
	kill -KILL "$(<"$(dir_of "$node")/pid")"
	rm -f "$(dir_of "$node")/pid"
}

cmd_start() {
	local node="$1"
	index_of "$node" >/dev/null
	[[ -f "$CLUSTER_DIR/cluster.secret" ]] || die "no cluster in $CLUSTER_DIR: run up first"
	launch "$node"
	wait_serving "$node"
}

# Absolute paths: sockets, mounts and the servers' flags must not depend on
# where a later command is run from.
if [[ "${1:-}" == up ]]; then
	mkdir -p "$CLUSTER_DIR"
fi
if [[ -d "$CLUSTER_DIR" ]]; then
	CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
fi

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
up) [[ $# -eq 0 ]] || usage; cmd_up ;;
down) [[ $# -eq 0 ]] || usage; cmd_down ;;
status) [[ $# -eq 0 ]] || usage; cmd_status ;;
leader) [[ $# -eq 0 ]] || usage; cmd_leader ;;
kill) [[ $# -eq 1 ]] || usage; cmd_kill "$1" ;;
start) [[ $# -eq 1 ]] || usage; cmd_start "$1" ;;
-h | --help | help) usage ;;
*)
	log "unknown command: $command"
	usage
	;;
esac
