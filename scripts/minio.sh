#!/usr/bin/env bash
# minio.sh — build, start and stop the MinIO servers sphere's tests use.
#
# MinIO is built from source with `go install` (the only way to get it here:
# no prebuilt binaries) into a per-version cache under .cache/, so the ~3
# minute compile happens once per machine and version.
#
# Servers listen on 127.0.0.1 only. Each start writes pid files into its
# DIR, and `stop DIR` stops exactly those processes.
set -euo pipefail

# The module proxy serves no tagged MinIO releases (MinIO's RELEASE.* tags
# are not semver), only pseudo-versions; this is the newest one served, and
# it builds with Go 1.26. Bump deliberately: the cache dir is keyed on it.
MINIO_VERSION="${SPHERE_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="$REPO_ROOT/.cache/minio-$MINIO_VERSION"
MINIO_BIN="$CACHE_DIR/minio"

: "${MINIO_ROOT_USER:=sphereadmin}"
: "${MINIO_ROOT_PASSWORD:=spheresecret}"
# How long start/start-dist wait for the health endpoint, in seconds.
: "${MINIO_START_TIMEOUT:=60}"

usage() {
	cat >&2 <<EOF
usage: $(basename "$0") COMMAND [ARGS]

  install                 build MinIO $MINIO_VERSION into
                          .cache/minio-<version>/ (skipped when present)
  path                    print the MinIO binary path (installing it if needed)
  start DIR PORT          single-drive server on 127.0.0.1:PORT, data in DIR/data
  start-dist DIR BASEPORT 4-node erasure-coded cluster on 127.0.0.1 ports
                          BASEPORT..BASEPORT+3, two drives per node under DIR
  stop DIR                stop the servers started with DIR (via DIR/*.pid)

Credentials come from MINIO_ROOT_USER / MINIO_ROOT_PASSWORD
(default sphereadmin / spheresecret). Logs go to DIR/minio*.log.
SPHERE_MINIO_VERSION overrides the pinned version.
EOF
	exit 2
}

log() { printf 'minio.sh: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

install_minio() {
	if [[ -x "$MINIO_BIN" ]]; then
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "go is not on PATH"
	log "building MinIO $MINIO_VERSION (takes a few minutes, once)"
	mkdir -p "$REPO_ROOT/.cache"
	# Build into a private dir and rename, so a concurrent or interrupted
	# install never leaves a half-written binary at $MINIO_BIN.
	local tmp
	tmp="$(mktemp -d "$REPO_ROOT/.cache/minio-build.XXXXXX")"
	local start=$SECONDS
	if ! (cd "$tmp" && GOBIN="$tmp" nice -n 19 \
		go install "github.com/minio/minio@$MINIO_VERSION"); then
		rm -rf "$tmp"
		die "go install github.com/minio/minio@$MINIO_VERSION failed"
	fi
	mkdir -p "$CACHE_DIR"
	mv -f "$tmp/minio" "$MINIO_BIN"
	rm -rf "$tmp"
	log "built $MINIO_BIN in $((SECONDS - start))s"
}

check_port() {
	if ! [[ "$1" =~ ^[0-9]+$ ]] || (($1 < 1024 || $1 > 65535)); then
		die "bad port '$1': want a number in 1024..65535"
	fi
}

# alive PIDFILE: the pid file names a running MinIO process. Checking the
# command line guards against a recycled pid belonging to something else.
alive() {
	local pid
	[[ -f "$1" ]] || return 1
	pid="$(<"$1")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	[[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *minio* ]]
}

# launch NAME PORT ARGS...: start one server in its own session, detached
# from our stdin/stdout so it outlives this script and CI's pipes.
launch() {
	local name="$1" port="$2"
	shift 2
	local pidfile="$DIR/$name.pid"
	# MINIO_CI_CD lets drives sit on the root filesystem, which a test
	# machine always does. The console (web UI) is not needed and would
	# otherwise grab a random extra port.
	#
	# _MINIO_SERVER_LOCAL: inside a container (/.dockerenv exists, as on
	# our CI machines) MinIO refuses to treat endpoints that resolve to
	# localhost as local and waits forever for "real" DNS. This variable
	# names the endpoint host that is this node, which is exactly what
	# several nodes on 127.0.0.1 need. Outside containers it is ignored.
	MINIO_ROOT_USER="$MINIO_ROOT_USER" MINIO_ROOT_PASSWORD="$MINIO_ROOT_PASSWORD" \
		MINIO_CI_CD=1 MINIO_BROWSER=off MINIO_UPDATE=off \
		_MINIO_SERVER_LOCAL="127.0.0.1:$port" \
		setsid "$MINIO_BIN" server --quiet --anonymous \
		--address "127.0.0.1:$port" "$@" \
		</dev/null >>"$DIR/$name.log" 2>&1 &
	echo $! >"$pidfile"
}

# refuse_running NAME...: fail if a server of that name already runs in DIR,
# before anything is launched, so a failed start cleans up only its own.
refuse_running() {
	local name
	for name in "$@"; do
		if alive "$DIR/$name.pid"; then
			die "$name is already running in $DIR (pid $(<"$DIR/$name.pid")); run: $0 stop $DIR"
		fi
	done
}

# refuse_busy PORT...: MinIO binds with SO_REUSEPORT, so a second server on a
# taken port starts "fine" and shares the traffic with the first. Catch it.
refuse_busy() {
	local port
	for port in "$@"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			die "port $port on 127.0.0.1 is already in use"
		fi
	done
}

# A start that fails half-way must not leave servers behind: the next
# attempt would find its ports taken.
cleanup_on_failure() {
	trap 'rc=$?; if ((rc != 0)); then cmd_stop "$DIR" >/dev/null 2>&1 || true; fi' EXIT
}

# wait_http URL PIDFILE...: poll URL until it answers 200, failing early
# if any of the servers has died (the log usually says why).
wait_http() {
	local url="$1"
	shift
	local deadline=$((SECONDS + MINIO_START_TIMEOUT)) p
	until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
		for p in "$@"; do
			if ! alive "$p"; then
				tail -n 20 "${p%.pid}.log" >&2 || true
				die "MinIO exited during start-up (see ${p%.pid}.log)"
			fi
		done
		((SECONDS < deadline)) || die "MinIO not healthy at $url after ${MINIO_START_TIMEOUT}s (logs in $DIR)"
		sleep 0.2
	done
}

cmd_start() {
	[[ $# -eq 2 ]] || usage
	DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
	local port="$2"
	check_port "$port"
	install_minio
	refuse_running minio
	refuse_busy "$port"
	mkdir -p "$DIR/data"
	cleanup_on_failure
	launch minio "$port" "$DIR/data"
	wait_http "http://127.0.0.1:$port/minio/health/live" "$DIR/minio.pid"
	log "single-drive MinIO on http://127.0.0.1:$port (pid $(<"$DIR/minio.pid"))"
}

cmd_start_dist() {
	[[ $# -eq 2 ]] || usage
	DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
	local base="$2" i d
	check_port "$base"
	check_port "$((base + 3))"
	install_minio

	# All four nodes share the host, so each must own distinct paths;
	# MinIO tells which endpoints are its own by matching the port
	# against --address. An explicit list (no ellipses) keeps the
	# node→path mapping obvious: 8 drives form one erasure set of 8,
	# which tolerates the loss of a whole node (2 drives) for reads
	# and writes.
	local endpoints=()
	for i in 1 2 3 4; do
		for d in 1 2; do
			mkdir -p "$DIR/node$i/d$d"
			endpoints+=("http://127.0.0.1:$((base + i - 1))$DIR/node$i/d$d")
		done
	done

	refuse_running minio-1 minio-2 minio-3 minio-4
	refuse_busy "$base" "$((base + 1))" "$((base + 2))" "$((base + 3))"
	cleanup_on_failure
	local pidfiles=()
	for i in 1 2 3 4; do
		launch "minio-$i" "$((base + i - 1))" "${endpoints[@]}"
		pidfiles+=("$DIR/minio-$i.pid")
	done
	# The cluster endpoint answers 200 only once the erasure sets have
	# write quorum as seen from that node; ask every node, since they
	# come up at slightly different moments.
	for i in 1 2 3 4; do
		wait_http "http://127.0.0.1:$((base + i - 1))/minio/health/live" "${pidfiles[@]}"
	done
	for i in 1 2 3 4; do
		wait_http "http://127.0.0.1:$((base + i - 1))/minio/health/cluster" "${pidfiles[@]}"
	done
	log "distributed MinIO on http://127.0.0.1:$base..$((base + 3)) (4 nodes, 8 drives)"
}

cmd_stop() {
	[[ $# -eq 1 ]] || usage
	DIR="$1"
	[[ -d "$DIR" ]] || die "no such directory: $DIR"
	local pidfile pids=() pid
	shopt -s nullglob
	for pidfile in "$DIR"/minio*.pid; do
		if alive "$pidfile"; then
			pid="$(<"$pidfile")"
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
		rm -f "$pidfile"
	done
	# MinIO drains for a few seconds on SIGTERM; give it 10, then force.
	local deadline=$((SECONDS + 10))
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "pid $pid did not stop on SIGTERM; killing"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	log "stopped ${#pids[@]} MinIO process(es) in $DIR"
}

[[ $# -ge 1 ]] || usage
cmd="$1"
shift
case "$cmd" in
install)
	[[ $# -eq 0 ]] || usage
	install_minio
	;;
path)
	[[ $# -eq 0 ]] || usage
	install_minio
	echo "$MINIO_BIN"
	;;
start) cmd_start "$@" ;;
start-dist) cmd_start_dist "$@" ;;
stop) cmd_stop "$@" ;;
-h | --help | help) usage ;;
*)
	log "unknown command: $cmd"
	usage
	;;
esac
