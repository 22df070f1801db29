# sphere — build, run, test and lint.
#
#   make build   bin/sphere
#   make run     a one-node daemon in the foreground, demo project on ./mnt
#   make test    Debian test deps + MinIO, then every package's tests with -race
#   make bench   benchmarks (see the note at the target)
#   make lint    go vet + pinned staticcheck
#   make clean   build and test outputs (keeps the .cache with MinIO)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
BIN := bin/sphere
CACHE_BIN := $(CURDIR)/.cache/bin

# staticcheck must be built by a release that knows the Go version in use;
# v0.8.2 is the first line built for Go 1.26. Bump deliberately.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CACHE_BIN)/staticcheck-$(STATICCHECK_VERSION)

TEST_FLAGS ?= -race -count=1 -timeout 40m
PKGS ?= ./...

.PHONY: build run test bench lint vet staticcheck clean distclean

build:
	$(GO) build -o $(BIN) ./cmd/sphere

# The daemon owns the FUSE session (allow_other), so as root it needs
# /dev/fuse and fusermount3; scripts/deps.sh installs the latter.
run: build
	@command -v fusermount3 >/dev/null || { echo "fusermount3 missing: run scripts/deps.sh" >&2; exit 1; }
	@mkdir -p .sphere/data mnt
	./$(BIN) server --data-dir ./.sphere/data --socket ./.sphere/sphere.sock --demo-mount ./mnt

# Tests find MinIO through SPHERE_MINIO_BIN (built once into .cache/ by
# scripts/minio.sh; the first build takes a few minutes).
test:
	scripts/deps.sh
	SPHERE_MINIO_BIN="$$(scripts/minio.sh path)" $(GO) test $(TEST_FLAGS) $(PKGS)

# Go benchmarks of every package (a few minutes), then the side-by-side
# comparison of SPEC §12: cmd/spherebench starts its own MinIO and a sphere
# daemon ($(BIN)) and compares direct minio-go, s3mount in-process, s3fs,
# rclone and a sphere mount on the same data, then sphere's sealed
# datasets against direct minio-go and go-fuse's loopback, printing each
# figure with its ratio and target (about ten minutes; drops the page
# cache, so run as root). Pass more flags with BENCH_SIDE_BY_SIDE_FLAGS
# (see go run ./cmd/spherebench -h); set BENCH_SIDE_BY_SIDE= to skip it.
BENCH_SIDE_BY_SIDE_FLAGS ?=
BENCH_SIDE_BY_SIDE ?= SPHERE_MINIO_BIN="$$(scripts/minio.sh path)" $(GO) run ./cmd/spherebench --sphere $(BIN) $(BENCH_SIDE_BY_SIDE_FLAGS)
bench: build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
ifneq ($(strip $(BENCH_SIDE_BY_SIDE)),)
	$(BENCH_SIDE_BY_SIDE)
endif

lint: vet staticcheck

vet:
	$(GO) vet $(PKGS)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) $(PKGS)

# Versioned file name, so bumping STATICCHECK_VERSION rebuilds it.
$(STATICCHECK):
	@mkdir -p $(CACHE_BIN)
	GOBIN=$(CACHE_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv -f $(CACHE_BIN)/staticcheck $@

# Never delete mnt/ recursively: if a daemon still has it mounted, rm -rf
# would delete the project's files through the mount.
clean:
	rm -rf bin/
	rm -f *.test *.out
	$(GO) clean -testcache

# Also drops the tool cache (MinIO takes minutes to rebuild) and local
# daemon state.
distclean: clean
	rm -rf .cache/ .sphere/
