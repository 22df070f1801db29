#!/usr/bin/env bash
# deps.sh — install the Debian packages sphere's tests and benchmarks need.
#
# Idempotent and fast when everything is already present: each package is
# checked with dpkg first, and apt-get update/install only run when at least
# one is missing. Needs root (or passwordless sudo) only in that case.
#
#   fuse3                 fusermount3 and /etc/fuse.conf, for every FUSE mount test
#   jupyter-nbconvert,
#   python3-ipykernel,
#   jupyter-client        the notebook workflow tests (nbconvert --execute)
#   python3-pandas        pd.read_csv on a mounted dataset, in those tests and the README
#   s3fs, rclone          peers in the side-by-side benchmark (SPEC §12)
#   fio                   throughput benchmarks
#   iproute2              `ip netns` for partition tests
#   curl                  MinIO health checks in scripts/minio.sh
set -euo pipefail

PACKAGES=(
	fuse3
	jupyter-nbconvert
	python3-ipykernel
	jupyter-client
	python3-pandas
	s3fs
	rclone
	fio
	iproute2
	curl
)

log() { printf 'deps: %s\n' "$*" >&2; }

installed() {
	# dpkg -s also succeeds for removed-but-configured packages; the status
	# field is the only reliable "really installed" signal.
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		log "need root to run: $*"
		return 1
	fi
}

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
else
	log "all Debian packages present"
fi

# The daemon mounts with allow_other so every user on the host sees the same
# tree (SPEC §6). Root may do that regardless, but non-root daemons need
# user_allow_other; keep the setting explicit so both cases behave alike.
if ! grep -qE '^[[:space:]]*user_allow_other[[:space:]]*$' /etc/fuse.conf 2>/dev/null; then
	log "enabling user_allow_other in /etc/fuse.conf"
	as_root sh -c 'echo user_allow_other >> /etc/fuse.conf'
fi

# Catch a half-installed system early rather than in a confusing test failure.
for cmd in fusermount3 jupyter-nbconvert s3fs rclone fio ip; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		log "missing command after install: $cmd"
		exit 1
	fi
done
if [[ ! -c /dev/fuse ]]; then
	log "warning: /dev/fuse is missing; FUSE tests will be skipped or fail"
fi
